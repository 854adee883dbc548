//! Virtual keys, spend, budgets and rate limits (LiteLLM's `/key/*` API).
//!
//! Keys are random (`sk-` + 48 hex characters), shown once, stored as SHA-256. The hot path
//! reads keys from a cache (refreshed every [`CACHE_TTL`]) and never waits on the database:
//! spend is buffered and written in batches by a background task, and flushed on shutdown.
//! Rate limits and budgets are per instance unless Redis is configured, in which case every
//! instance counts in Redis and enforces one limit and one budget.

pub mod admin;
pub mod limiter;
pub mod migrations;
pub mod record;
pub mod store;

use crate::error::ProxyError;
use limiter::Limiter;
use record::{KeyRecord, now};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{SpendLog, Store};

/// How long a key read from the database is trusted; also how long a key deleted on another
/// instance keeps working here.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// How often buffered spend is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The master key (or no key configured at all).
    Admin,
    /// A virtual key.
    Key(Arc<KeyRecord>),
}

#[derive(Debug)]
struct Cached {
    record: Option<Arc<KeyRecord>>,
    fetched: Instant,
}

#[derive(Debug, Default)]
struct Pending {
    logs: Vec<SpendLog>,
    spend: HashMap<String, f64>,
}

/// The key service.
#[derive(Debug)]
pub struct Keys {
    store: Store,
    limiter: Limiter,
    cache: Mutex<HashMap<String, Cached>>,
    pending: Mutex<Pending>,
    flush_lock: tokio::sync::Mutex<()>,
    /// The runtime that opened the store and Redis: their connections are registered with
    /// it, so I/O on them runs there (requests are served on other, per-thread runtimes).
    home: tokio::runtime::Handle,
}

fn db_err(e: impl std::fmt::Display) -> ProxyError {
    tracing::error!(error = %e, "key store error");
    ProxyError::Unavailable("the key store is unavailable; retry shortly".into())
}

/// The hex SHA-256 of a key: its token.
pub fn token_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Keys {
    /// Opens the store (and Redis, if a URL is given).
    pub async fn open(database_url: &str, redis_url: Option<&str>) -> Result<Arc<Self>, String> {
        let store = Store::connect(database_url)
            .await
            .map_err(|e| format!("database: {e}"))?;
        let limiter = match redis_url {
            Some(u) => Limiter::redis(u).await?,
            None => Limiter::local(),
        };
        Ok(Arc::new(Self {
            store,
            limiter,
            cache: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
            flush_lock: tokio::sync::Mutex::new(()),
            home: tokio::runtime::Handle::current(),
        }))
    }

    /// The runtime that owns the store's and Redis's connections.
    pub fn home(&self) -> &tokio::runtime::Handle {
        &self.home
    }

    /// Runs `f` on the home runtime and waits for it.
    async fn at_home<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, ProxyError> {
        self.home.spawn(f).await.map_err(db_err)
    }

    /// Whether limits are shared through Redis.
    pub fn shared_limits(&self) -> bool {
        matches!(self.limiter, Limiter::Redis(_))
    }

    async fn lookup(&self, token: &str) -> Result<Option<Arc<KeyRecord>>, ProxyError> {
        if let Ok(c) = self.cache.lock()
            && let Some(hit) = c.get(token)
            && hit.fetched.elapsed() < CACHE_TTL
        {
            return Ok(hit.record.clone());
        }
        let (store, t) = (self.store.clone(), token.to_string());
        let record = self
            .at_home(async move { store.get(&t).await })
            .await?
            .map_err(db_err)?
            .map(Arc::new);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 100_000 {
                c.clear();
            }
            c.insert(
                token.to_string(),
                Cached {
                    record: record.clone(),
                    fetched: Instant::now(),
                },
            );
        }
        Ok(record)
    }

    fn forget(&self, token: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(token);
        }
    }

    /// Checks a presented key: it exists, is not deleted and not expired.
    pub async fn authenticate(&self, key: &str) -> Result<Arc<KeyRecord>, ProxyError> {
        let token = token_of(key);
        let Some(rec) = self.lookup(&token).await? else {
            return Err(ProxyError::Unauthorized("invalid API key".into()));
        };
        if rec.deleted_at.is_some() {
            return Err(ProxyError::Unauthorized(
                "this API key has been deleted".into(),
            ));
        }
        if let Some(exp) = rec.expires
            && exp <= now()
        {
            return Err(ProxyError::Unauthorized(format!(
                "this API key expired at {exp} (Unix time)"
            )));
        }
        Ok(rec)
    }

    fn pending_spend(&self, token: &str) -> f64 {
        self.pending
            .lock()
            .ok()
            .and_then(|p| p.spend.get(token).copied())
            .unwrap_or(0.0)
    }

    /// The key's spend as this instance knows it (Redis's when shared).
    pub async fn spend(&self, rec: &KeyRecord) -> Result<f64, ProxyError> {
        let local = rec.spend + self.pending_spend(&rec.token);
        match self
            .limiter
            .shared_spend(&rec.token, rec.spend)
            .await
            .map_err(db_err)?
        {
            Some(shared) => Ok(shared),
            None => Ok(local),
        }
    }

    /// Admits one request for `model`: allowed model, budget left, rpm and tpm within limits.
    /// Runs on the home runtime when it needs Redis or the database.
    pub async fn admit(
        self: &Arc<Self>,
        rec: &Arc<KeyRecord>,
        model: &str,
    ) -> Result<(), ProxyError> {
        if self.shared_limits() || rec.budget_reset_at.is_some_and(|r| r <= now()) {
            let (me, rec, model) = (Arc::clone(self), Arc::clone(rec), model.to_string());
            return self
                .at_home(async move { me.admit_here(&rec, &model).await })
                .await?;
        }
        self.admit_here(rec, model).await
    }

    async fn admit_here(&self, rec: &KeyRecord, model: &str) -> Result<(), ProxyError> {
        if !rec.models.is_empty()
            && !rec
                .models
                .iter()
                .any(|m| m == model || m == "*" || m == "all-proxy-models")
        {
            return Err(ProxyError::Forbidden(format!(
                "this key may not use model {model:?}; allowed: {}",
                rec.models.join(", ")
            )));
        }
        let t = now();
        if let (Some(reset), Some(d)) = (
            rec.budget_reset_at,
            rec.budget_duration
                .as_deref()
                .and_then(record::parse_duration),
        ) && reset <= t
        {
            if self
                .store
                .reset_budget(&rec.token, reset, t + d)
                .await
                .map_err(db_err)?
            {
                self.limiter.reset_spend(&rec.token).await.map_err(db_err)?;
                tracing::info!(key = %&rec.token[..12], "budget period reset");
            }
            self.forget(&rec.token);
            return Box::pin(self.admit_fresh(&rec.token, model)).await;
        }
        if let Some(max) = rec.max_budget {
            let spend = self.spend(rec).await?;
            if spend >= max {
                return Err(ProxyError::RateLimited {
                    message: format!(
                        "budget exceeded: this key has spent ${spend:.6} of its ${max} budget"
                    ),
                    retry_after: rec.budget_reset_at.map(|r| (r - t).max(1) as u64),
                    retry: false,
                });
            }
        }
        if let Some(tpm) = rec.tpm_limit {
            let used = self.limiter.tokens(&rec.token, t).await.map_err(db_err)?;
            if used >= tpm {
                return Err(ProxyError::RateLimited {
                    message: format!("tpm limit reached: {used} of {tpm} tokens used this minute"),
                    retry_after: Some((60 - t % 60) as u64),
                    retry: true,
                });
            }
        }
        if let Some(rpm) = rec.rpm_limit {
            let n = self
                .limiter
                .count_request(&rec.token, t)
                .await
                .map_err(db_err)?;
            if n > rpm {
                return Err(ProxyError::RateLimited {
                    message: format!("rpm limit reached: {rpm} requests per minute"),
                    retry_after: Some((60 - t % 60) as u64),
                    retry: true,
                });
            }
        }
        Ok(())
    }

    async fn admit_fresh(&self, token: &str, model: &str) -> Result<(), ProxyError> {
        match self.lookup(token).await? {
            Some(rec) if rec.budget_reset_at.is_none_or(|r| r > now()) => {
                Box::pin(self.admit_here(&rec, model)).await
            }
            _ => Err(ProxyError::Unauthorized("invalid API key".into())),
        }
    }

    /// Records a call's cost; returns the key's spend including it. Runs on the home
    /// runtime when limits are shared through Redis.
    pub async fn charge(
        self: &Arc<Self>,
        rec: &Arc<KeyRecord>,
        model: &str,
        request_id: &str,
        outcome: agentbridge::answer::Outcome,
    ) -> f64 {
        if !self.shared_limits() {
            return self.charge_here(rec, model, request_id, outcome).await;
        }
        let (me, rec2, model2, id) = (
            Arc::clone(self),
            Arc::clone(rec),
            model.to_string(),
            request_id.to_string(),
        );
        self.at_home(async move { me.charge_here(&rec2, &model2, &id, outcome).await })
            .await
            .unwrap_or_else(|_| rec.spend + self.pending_spend(&rec.token))
    }

    async fn charge_here(
        &self,
        rec: &KeyRecord,
        model: &str,
        request_id: &str,
        outcome: agentbridge::answer::Outcome,
    ) -> f64 {
        let t = now();
        if let Err(e) = self
            .limiter
            .add_tokens(&rec.token, outcome.usage.total_tokens as i64, t)
            .await
        {
            tracing::warn!(error = %e, "could not count tokens");
        }
        let shared = match self
            .limiter
            .add_spend(&rec.token, outcome.cost, rec.spend)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not add shared spend");
                None
            }
        };
        if let Ok(mut p) = self.pending.lock() {
            *p.spend.entry(rec.token.clone()).or_default() += outcome.cost;
            p.logs.push(SpendLog {
                request_id: request_id.to_string(),
                api_key: rec.token.clone(),
                model: model.to_string(),
                spend: outcome.cost,
                prompt_tokens: outcome.usage.prompt_tokens as i64,
                completion_tokens: outcome.usage.completion_tokens as i64,
                created_at: t,
            });
        }
        shared.unwrap_or_else(|| rec.spend + self.pending_spend(&rec.token))
    }

    /// Writes buffered spend. On failure the batch is kept for the next try.
    pub async fn flush(&self) -> Result<usize, String> {
        let _one = self.flush_lock.lock().await;
        let (logs, spend) = match self.pending.lock() {
            Ok(mut p) if !p.logs.is_empty() => {
                (std::mem::take(&mut p.logs), std::mem::take(&mut p.spend))
            }
            _ => return Ok(0),
        };
        match self.store.record(&logs).await {
            Ok(()) => {
                if let Ok(mut c) = self.cache.lock() {
                    for (token, amount) in &spend {
                        if let Some(Cached {
                            record: Some(r), ..
                        }) = c.get_mut(token)
                        {
                            let mut updated = (**r).clone();
                            updated.spend += amount;
                            *r = Arc::new(updated);
                        }
                    }
                }
                Ok(logs.len())
            }
            Err(e) => {
                if let Ok(mut p) = self.pending.lock() {
                    let mut logs = logs;
                    logs.append(&mut p.logs);
                    p.logs = logs;
                    for (t, a) in spend {
                        *p.spend.entry(t).or_default() += a;
                    }
                }
                Err(format!("spend flush failed: {e}"))
            }
        }
    }

    /// Starts the background writer; it ends when `stop` resolves, after a last flush.
    pub fn spawn_flusher(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut stop = stop;
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                if let Err(e) = me.flush().await {
                    tracing::warn!("{e}");
                }
            }
            match me.flush().await {
                Ok(n) => tracing::info!(records = n, "spend writer stopped after a final flush"),
                Err(e) => tracing::error!("{e}; buffered spend lost at shutdown"),
            }
        })
    }
}
