//! The gateway's shared state (models, deployments, keys, limits) and each worker's view of
//! it ([`AppState`]: the shared state plus that worker's upstream client).

use crate::config::{Config, ServerSettings};
use crate::router::{Routed, Router};
use agentbridge::canonical::AgentRequest;
use agentbridge::{Client, Deployment};
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Deployments served under one model name (a router group).
pub type Pool = crate::router::Group;

/// What every worker shares: models, keys, limits.
#[derive(Debug)]
pub struct Gateway {
    /// Connect timeout for upstream clients (the longest of the deployments').
    pub connect_timeout: std::time::Duration,
    /// Model name -> deployments, in config order.
    pub models: Vec<(String, Pool)>,
    /// Routing settings and shared routing state.
    pub router: Router,
    /// The master key, if any.
    pub master_key: Option<SecretString>,
    /// Limits and timeouts.
    pub server: ServerSettings,
    /// Permits for concurrent requests.
    pub inflight: Arc<Semaphore>,
    /// Virtual keys, when a master key is configured.
    pub keys: Option<Arc<crate::keys::Keys>>,
    /// Metrics and the access log.
    pub observe: Arc<crate::observe::Observe>,
}

impl Gateway {
    /// Resolves every deployment (region, credentials provider).
    ///
    /// Boxed here so that the start-up code under it (credential chains, database and Redis
    /// connections) is compiled in this crate, at its dependencies' opt-levels, rather than
    /// in the binary's crate that awaits it (an async fn's body is compiled where it is
    /// polled), on the last step of a release build.
    pub fn new(config: Config) -> BoxFuture<'static, Result<Self, String>> {
        Box::pin(Self::resolve(config))
    }

    async fn resolve(config: Config) -> Result<Self, String> {
        let connect = config
            .models
            .iter()
            .map(|m| m.settings.timeouts.connect)
            .max()
            .unwrap_or_default();
        let mut deployments = Vec::with_capacity(config.models.len());
        for entry in config.models {
            let d = Arc::new(
                Deployment::new(entry.settings)
                    .await
                    .map_err(|e| format!("model {}: {e}", entry.name))?,
            );
            deployments.push((entry.name, d, entry.info));
        }
        let mut router_settings = config.router;
        if router_settings.redis_url.is_none() {
            router_settings.redis_url = config.redis_url.clone();
        }
        let (router, groups) =
            Router::build(router_settings, config.server.session_failover, deployments);
        let models = groups
            .into_iter()
            .map(|mut g| {
                g.forwards_client_headers = config.forward_headers.applies_to(&g.name);
                (g.name.clone(), g)
            })
            .collect();
        let keys = match &config.master_key {
            None => None,
            Some(_) => {
                use secrecy::ExposeSecret;
                let url = match (&config.database_url, &config.default_database) {
                    (Some(u), _) => u.expose_secret().to_string(),
                    (None, Some(p)) => format!("sqlite://{}", p.display()),
                    (None, None) => "sqlite://agentbridge.db".to_string(),
                };
                let redis = config
                    .redis_url
                    .as_ref()
                    .map(|r| r.expose_secret().to_string());
                Some(
                    crate::keys::Keys::open(
                        &url,
                        redis.as_deref(),
                        config.server.redis_outage,
                        config.server.request_log_retention_days,
                    )
                    .await?,
                )
            }
        };
        Ok(Self {
            observe: Arc::new(
                crate::observe::Observe::new(config.observe.clone()).with_sink(
                    keys.as_ref()
                        .filter(|_| config.server.request_log)
                        .map(|k| k.request_sink()),
                ),
            ),
            keys,
            connect_timeout: connect,
            models,
            router,
            master_key: config.master_key,
            inflight: Arc::new(Semaphore::new(config.server.max_concurrent_requests)),
            server: config.server,
        })
    }

    /// A new upstream client (one per worker thread: its pooled connections live on the
    /// runtime that opened them).
    pub fn new_client(&self) -> agentbridge::Result<Client> {
        Client::new(self.connect_timeout)
    }

    /// The pool serving `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.models.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// Answers `req` from the deployments of `pool` (or its fallbacks): see [`Router::route`].
    pub async fn route(
        &self,
        pool: &Pool,
        client: &Client,
        req: &mut AgentRequest,
    ) -> crate::error::Result<Routed> {
        self.router
            .route(pool, |name| self.pool(name), client, req)
            .await
    }

    /// Served model names.
    pub fn model_names(&self) -> Vec<String> {
        self.models.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// A router's state: the shared gateway and this worker's upstream client.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Shared by every worker.
    pub gw: Arc<Gateway>,
    /// This worker's client.
    pub client: Client,
}

impl axum::extract::FromRef<AppState> for Arc<Gateway> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.gw)
    }
}
