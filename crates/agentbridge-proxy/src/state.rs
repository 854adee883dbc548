//! The gateway's shared state (models, deployments, keys, limits) and each worker's view of
//! it ([`AppState`]: the shared state plus that worker's upstream client).

use crate::config::{Config, ServerSettings};
use agentbridge::canonical::{AgentRequest, Answer};
use agentbridge::{Client, Deployment};
use secrecy::SecretString;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

/// Deployments served under one model name, taken in turn.
#[derive(Debug)]
pub struct Pool {
    /// Each deployment with its id (`{model_name}/{index in the config's entries of that name}`).
    deployments: Vec<(String, Arc<Deployment>)>,
    next: AtomicUsize,
}

impl Pool {
    /// The next deployment (round robin) and its id.
    pub fn pick(&self) -> (&str, &Arc<Deployment>) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.deployments.len();
        let (id, d) = &self.deployments[i];
        (id, d)
    }

    /// Sends `req` to a deployment of this pool; returns the answer and the deployment's id.
    pub async fn invoke(
        &self,
        client: &Client,
        req: &AgentRequest,
    ) -> agentbridge::Result<(Answer, String)> {
        let (id, d) = self.pick();
        let answer = d.invoke(client, req).await?;
        Ok((answer, id.to_string()))
    }

    /// The request header carrying the end user's own token, if the deployments name one.
    pub fn user_token_header(&self) -> Option<&str> {
        self.deployments
            .iter()
            .find_map(|(_, d)| d.settings.user_token_header.as_deref())
    }

    /// The deployments and their ids.
    pub fn deployments(&self) -> impl Iterator<Item = (&str, &Arc<Deployment>)> {
        self.deployments.iter().map(|(id, d)| (id.as_str(), d))
    }
}

/// What every worker shares: models, keys, limits.
#[derive(Debug)]
pub struct Gateway {
    /// Connect timeout for upstream clients (the longest of the deployments').
    pub connect_timeout: std::time::Duration,
    /// Model name -> deployments, in config order.
    pub models: Vec<(String, Pool)>,
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
    pub async fn new(config: Config) -> Result<Self, String> {
        let connect = config
            .models
            .iter()
            .map(|m| m.settings.timeouts.connect)
            .max()
            .unwrap_or_default();
        let mut models: Vec<(String, Pool)> = Vec::new();
        for entry in config.models {
            let d = Arc::new(
                Deployment::new(entry.settings)
                    .await
                    .map_err(|e| format!("model {}: {e}", entry.name))?,
            );
            match models.iter_mut().find(|(n, _)| *n == entry.name) {
                Some((name, pool)) => {
                    let id = format!("{name}/{}", pool.deployments.len());
                    pool.deployments.push((id, d))
                }
                None => models.push((
                    entry.name.clone(),
                    Pool {
                        deployments: vec![(format!("{}/0", entry.name), d)],
                        next: AtomicUsize::new(0),
                    },
                )),
            }
        }
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
                Some(crate::keys::Keys::open(&url, redis.as_deref()).await?)
            }
        };
        Ok(Self {
            observe: Arc::new(crate::observe::Observe::new(config.observe.clone())),
            keys,
            connect_timeout: connect,
            models,
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
