//! Virtual keys, spend, budgets and rate limits (LiteLLM's `/key/*` API).
//!
//! Keys are random (`sk-` + 48 hex characters), shown once, stored as SHA-256. The hot path
//! reads keys from a cache and does not wait on the database for a key in use: an entry
//! older than [`REFRESH_AFTER`] is read again in the background while it is served, and only
//! one not used for [`CACHE_TTL`] is read before a request goes on (as is an unknown key).
//! Spend is buffered and written in batches by a background task, and flushed on shutdown.
//! Rate limits and budgets are per instance unless Redis is configured, in which case every
//! instance counts in Redis and enforces one limit and one budget.
//!
//! Neither dependency can stall a request (`docs/reliability.md`): every call is bounded.
//! While the database is unreachable, cached keys keep working (a stale entry is served),
//! unknown keys get 503 and spend waits in a bounded buffer ([`spend`]); while Redis is
//! unreachable, limits are counted per instance (or refused, by setting) and handed to
//! Redis when it returns ([`shared`]). A background task ([`Keys::spawn_flusher`]) writes
//! the spend and watches both dependencies.

pub mod admin;
pub mod debt;
pub mod limiter;
pub mod migrations;
pub mod record;
pub mod request_log;
pub mod request_queries;
pub mod shared;
pub mod spend;
pub mod store;
pub mod ui_sessions;
pub mod upkeep;

pub use upkeep::Health;

use crate::config::RedisOutage;
use crate::error::ProxyError;
use limiter::Limiter;
use record::{KeyRecord, now};
use sha2::{Digest, Sha256};
use spend::SpendBuffer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{SpendLog, Store};

/// How long a key read from the database is served at most; also how long a key deleted on
/// another instance keeps working here at most.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// How old a cached key is when a request that uses it has it read again in the background
/// (one read at a time per key), so that keys in steady use are never read on a request's
/// path: a key deleted elsewhere stops working here about this long after, once used again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(1);
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
    /// From then on, a request that uses the entry has the key read again in the background.
    refresh_at: Instant,
    /// From then on (while the database answers), a request reads the key before going on.
    expires: Instant,
    /// Whether a background read of the key is under way.
    refreshing: bool,
}

/// The key service.
#[derive(Debug)]
pub struct Keys {
    store: Store,
    limiter: Limiter,
    cache: Mutex<HashMap<String, Cached>>,
    spend: SpendBuffer,
    /// Whether the database answered the last call; while it does not, lookups are served
    /// from the cache only.
    database_up: AtomicBool,
    /// Whether the last check of an unreachable database got an answer.
    database_pinged: AtomicBool,
    /// The runtime that opened the store and Redis: their connections are registered with
    /// it, so I/O on them runs there (requests are served on other, per-thread runtimes).
    home: tokio::runtime::Handle,
    /// Finished requests not yet written to the request log.
    requests: Arc<request_log::RequestLogBuffer>,
    /// How long logged requests are kept, ms.
    retention_ms: i64,
    /// When the request log was last pruned.
    pruned: Mutex<Option<Instant>>,
}

fn db_err(e: impl std::fmt::Display) -> ProxyError {
    tracing::error!(error = %e, "key store error");
    ProxyError::Unavailable("the key store is unavailable; retry shortly".into())
}

/// A key that is in no cache while the database is unreachable.
fn unknown_while_database_down() -> ProxyError {
    ProxyError::Unavailable(
        "the key store's database is unreachable and this key is not cached here; retry shortly"
            .into(),
    )
}

/// The hex SHA-256 of a key: its token.
pub fn token_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// What a key may still use this minute once a request is admitted (counting it): `None`
/// where the key has no such limit. LiteLLM's `litellm_remaining_api_key_requests_for_model`
/// and `..._tokens_for_model` report it (its v3 limiter falls back to the key-wide limits,
/// the only ones agentbridge keys have).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headroom {
    /// `rpm_limit` less the requests of this minute, this one included.
    pub requests: Option<i64>,
    /// `tpm_limit` less the tokens of this minute (this request's are not known yet).
    pub tokens: Option<i64>,
}

impl Keys {
    /// Opens the store (and Redis, if a URL is given; `redis_outage` says what happens
    /// while it is unreachable).
    pub async fn open(
        database_url: &str,
        redis_url: Option<&str>,
        redis_outage: RedisOutage,
        retention_days: f64,
    ) -> Result<Arc<Self>, String> {
        let store = Store::connect(database_url)
            .await
            .map_err(|e| format!("database: {e}"))?;
        let limiter = match redis_url {
            Some(u) => Limiter::redis(u, redis_outage).await?,
            None => Limiter::local(),
        };
        Ok(Arc::new(Self {
            store,
            limiter,
            cache: Mutex::new(HashMap::new()),
            spend: SpendBuffer::default(),
            database_up: AtomicBool::new(true),
            database_pinged: AtomicBool::new(false),
            home: tokio::runtime::Handle::current(),
            requests: Arc::default(),
            retention_ms: (retention_days * 86_400_000.0) as i64,
            pruned: Mutex::new(None),
        }))
    }

    /// The database (for the admin UI's queries).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where finished requests go to be logged (see [`request_log`]).
    pub fn request_sink(&self) -> Arc<dyn crate::observe::RecordSink> {
        self.requests.clone()
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

    /// The key with this token: from the cache until the entry expires (read again in the
    /// background once it is due), else from the database; an expired entry if the
    /// database does not answer.
    async fn lookup(self: &Arc<Self>, token: &str) -> Result<Option<Arc<KeyRecord>>, ProxyError> {
        let up = self.database_up.load(Ordering::Acquire);
        let now = Instant::now();
        let cached = self.cache.lock().ok().and_then(|mut c| {
            c.get_mut(token).map(|hit| {
                let due = up && now >= hit.refresh_at && !hit.refreshing;
                hit.refreshing |= due;
                (hit.record.clone(), now < hit.expires, due)
            })
        });
        let stale = match cached {
            Some((record, true, due)) => {
                if due {
                    self.refresh_in_background(token);
                }
                return Ok(record);
            }
            Some((record, false, _)) => Some(record),
            None => None,
        };
        if !up {
            return stale.ok_or_else(unknown_while_database_down);
        }
        let me = Arc::clone(self);
        let t = token.to_string();
        self.at_home(async move { me.read(&t).await })
            .await?
            .or_else(|()| stale.ok_or_else(unknown_while_database_down))
    }

    /// Reads the key while a request that uses it goes on with the cached entry.
    fn refresh_in_background(self: &Arc<Self>, token: &str) {
        let me = Arc::clone(self);
        let t = token.to_string();
        self.home.spawn(async move {
            if me.read(&t).await.is_err()
                && let Ok(mut c) = me.cache.lock()
                && let Some(hit) = c.get_mut(&t)
            {
                hit.refreshing = false;
            }
        });
    }

    /// Reads the key from the database into the cache; `Err` if the database did not answer.
    async fn read(&self, token: &str) -> Result<Option<Arc<KeyRecord>>, ()> {
        let writes = self.spend.writes();
        match self.store.get(token).await {
            Ok(r) => {
                self.database_answered();
                Ok(self.remember(token, r, writes))
            }
            Err(e) => {
                self.database_failed(&e);
                Err(())
            }
        }
    }

    /// Caches a key read from the database when the spend buffer's writing stood at
    /// `read_at`, and returns the record to use. Its spend is the database's unless a
    /// batch's commit may have overlapped the read: then the read may hold spend the buffer
    /// also holds (committed, not yet out of the buffer: counted twice) or lack spend the
    /// buffer no longer holds (committed and moved into the cached record after the read:
    /// counted nowhere). In that case the cached record's spend, which flushes keep in step
    /// with the buffer, is kept with the rest of the record as read, and the next request
    /// has the entry read again (in the background). A key with no cached record keeps what
    /// was read, and the error, for that one request: the next one reads it first.
    fn remember(
        &self,
        token: &str,
        record: Option<KeyRecord>,
        read_at: spend::Writes,
    ) -> Option<Arc<KeyRecord>> {
        self.spend.if_unchanged(read_at, |unchanged| {
            let Ok(mut c) = self.cache.lock() else {
                return record.map(Arc::new);
            };
            let now = Instant::now();
            let (record, refresh_at, expires) = if unchanged {
                (record, now + REFRESH_AFTER, now + CACHE_TTL)
            } else {
                let kept = c.get(token).and_then(|hit| hit.record.as_ref());
                match (record, kept) {
                    // (A record of another budget period says nothing of this one's spend.)
                    (Some(read), Some(kept))
                        if kept.budget_period_start == read.budget_period_start =>
                    {
                        let record = KeyRecord {
                            spend: kept.spend,
                            ..read
                        };
                        (Some(record), now, now + CACHE_TTL)
                    }
                    (read, _) => (read, now, now),
                }
            };
            let record = record.map(Arc::new);
            if c.len() > 100_000 {
                c.clear();
            }
            c.insert(
                token.to_string(),
                Cached {
                    record: record.clone(),
                    refresh_at,
                    expires,
                    refreshing: false,
                },
            );
            record
        })
    }

    fn forget(&self, token: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(token);
        }
    }

    /// Checks a presented key: it exists, is not deleted and not expired.
    pub async fn authenticate(self: &Arc<Self>, key: &str) -> Result<Arc<KeyRecord>, ProxyError> {
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

    /// The key's spend as this instance knows it: the database's figure as last read or
    /// written here, plus what was charged here in its budget period and not yet written
    /// (spend charged before a reset and written after it counts in the period before, as
    /// [`store::Store::record`] writes it). The first is the
    /// cached record's, which a flush updates (`rec`, the record a request started with,
    /// may predate it: with `rec.spend`, the spend written meanwhile would count nowhere);
    /// both are read while no flush is moving spend from the buffer into the cached record.
    fn local_spend(&self, rec: &KeyRecord) -> f64 {
        self.spend.with_unwritten(&rec.token, |unwritten| {
            let cached = self.cache.lock().ok().and_then(|c| {
                c.get(&rec.token)
                    .and_then(|hit| hit.record.as_ref())
                    .map(|r| (r.spend, r.budget_period_start))
            });
            let (written, period) = cached.unwrap_or((rec.spend, rec.budget_period_start));
            written + unwritten.since(period)
        })
    }

    /// The key's spend (Redis's when shared and reachable).
    pub async fn spend(&self, rec: &KeyRecord) -> Result<f64, ProxyError> {
        let local = self.local_spend(rec);
        match self
            .limiter
            .shared_spend(&rec.token, local)
            .await
            .map_err(ProxyError::Unavailable)?
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
    ) -> Result<Headroom, ProxyError> {
        if self.spend.is_full() {
            return Err(ProxyError::Unavailable(format!(
                "the gateway holds the spend of {} calls it could not yet write to its database; retry shortly",
                spend::MAX_BUFFERED
            )));
        }
        if self.shared_limits() || rec.budget_reset_at.is_some_and(|r| r <= now()) {
            let (me, rec, model) = (Arc::clone(self), Arc::clone(rec), model.to_string());
            return self
                .at_home(async move { me.admit_here(&rec, &model).await })
                .await?;
        }
        self.admit_here(rec, model).await
    }

    async fn admit_here(
        self: &Arc<Self>,
        rec: &KeyRecord,
        model: &str,
    ) -> Result<Headroom, ProxyError> {
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
                .reset_budget(&rec.token, reset, t, t + d)
                .await
                .map_err(db_err)?
            {
                self.limiter.reset_spend(&rec.token).await;
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
        let mut headroom = Headroom::default();
        if let Some(tpm) = rec.tpm_limit {
            let used = self
                .limiter
                .tokens(&rec.token, t)
                .await
                .map_err(ProxyError::Unavailable)?;
            if used >= tpm {
                return Err(ProxyError::RateLimited {
                    message: format!("tpm limit reached: {used} of {tpm} tokens used this minute"),
                    retry_after: Some((60 - t % 60) as u64),
                    retry: true,
                });
            }
            headroom.tokens = Some(tpm - used);
        }
        if let Some(rpm) = rec.rpm_limit {
            let n = self
                .limiter
                .count_request(&rec.token, t)
                .await
                .map_err(ProxyError::Unavailable)?;
            if n > rpm {
                return Err(ProxyError::RateLimited {
                    message: format!("rpm limit reached: {rpm} requests per minute"),
                    retry_after: Some((60 - t % 60) as u64),
                    retry: true,
                });
            }
            headroom.requests = Some(rpm - n);
        }
        Ok(headroom)
    }

    async fn admit_fresh(
        self: &Arc<Self>,
        token: &str,
        model: &str,
    ) -> Result<Headroom, ProxyError> {
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
            .unwrap_or_else(|_| self.local_spend(rec))
    }

    async fn charge_here(
        &self,
        rec: &KeyRecord,
        model: &str,
        request_id: &str,
        outcome: agentbridge::answer::Outcome,
    ) -> f64 {
        let t = now();
        self.limiter
            .add_tokens(&rec.token, outcome.usage.total_tokens as i64, t)
            .await;
        let shared = self
            .limiter
            .add_spend(&rec.token, outcome.cost, self.local_spend(rec))
            .await;
        self.spend.push(SpendLog {
            request_id: request_id.to_string(),
            api_key: rec.token.clone(),
            model: model.to_string(),
            spend: outcome.cost,
            prompt_tokens: outcome.usage.prompt_tokens as i64,
            completion_tokens: outcome.usage.completion_tokens as i64,
            created_at: t,
        });
        shared.unwrap_or_else(|| self.local_spend(rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbridge::answer::Outcome;

    /// A key service on a fresh SQLite file, or on the PostgreSQL database named by
    /// `AGENTBRIDGE_TEST_POSTGRES` (`scripts/test-multi-instance` sets it and runs these
    /// tests again), with one new key.
    struct Fixture {
        keys: Arc<Keys>,
        key: String,
        sqlite: Option<std::path::PathBuf>,
    }

    impl Fixture {
        async fn new() -> Self {
            let (url, sqlite) = match std::env::var("AGENTBRIDGE_TEST_POSTGRES") {
                Ok(url) => (url, None),
                Err(_) => {
                    let path = std::env::temp_dir()
                        .join(format!("agentbridge-keys-{}.db", uuid::Uuid::new_v4()));
                    (format!("sqlite://{}", path.display()), Some(path))
                }
            };
            let keys = Keys::open(&url, None, RedisOutage::default(), 30.0)
                .await
                .unwrap();
            let (key, _) = admin::create_key(&keys, &admin::KeyFields::default())
                .await
                .unwrap();
            Self { keys, key, sqlite }
        }

        fn token(&self) -> String {
            token_of(&self.key)
        }

        async fn charge(&self, rec: &Arc<KeyRecord>, cost: f64) -> f64 {
            let outcome = Outcome {
                usage: Default::default(),
                cost,
            };
            let id = uuid::Uuid::new_v4().to_string();
            self.keys.charge(rec, "m", &id, outcome).await
        }

        /// A call's spend log, charged at `at`.
        fn log(&self, cost: f64, at: i64) -> store::SpendLog {
            store::SpendLog {
                request_id: crate::observe::new_request_id(),
                api_key: self.token(),
                model: "m".into(),
                spend: cost,
                prompt_tokens: 0,
                completion_tokens: 0,
                created_at: at,
            }
        }

        /// A call charged by another instance at `at`, as its flush writes it; the spend it
        /// added to the key.
        async fn charge_elsewhere_at(&self, cost: f64, at: i64) -> f64 {
            let added = self.keys.store.record(&[self.log(cost, at)]).await.unwrap();
            added.get(&self.token()).copied().unwrap_or(0.0)
        }

        /// A call charged by another instance now, as its flush writes it.
        async fn charge_elsewhere(&self, cost: f64) {
            self.charge_elsewhere_at(cost, record::now()).await;
        }

        /// Gives the key a budget of `max` USD a day whose period ended `ago` seconds ago
        /// (the next request resets it).
        async fn budget_period_ended(&self, max: f64, ago: i64) {
            sqlx::query(
                "UPDATE virtual_keys SET max_budget = $1, budget_duration = '1d', budget_reset_at = $2 \
                 WHERE key_hash = $3",
            )
            .bind(max)
            .bind(record::now() - ago)
            .bind(self.token())
            .execute(&self.keys.store.pool)
            .await
            .unwrap();
            self.keys.forget(&self.token());
        }

        /// The key as stored.
        async fn stored(&self) -> KeyRecord {
            self.keys.store.get(&self.token()).await.unwrap().unwrap()
        }

        /// The spend as a request starting now would see it.
        async fn spend_now(&self) -> f64 {
            let rec = self.keys.authenticate(&self.key).await.unwrap();
            self.keys.spend(&rec).await.unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            if let Some(path) = &self.sqlite {
                store::remove_db(path);
            }
        }
    }

    /// A key whose budget is spent is refused until its period ends; the next request after
    /// that starts a new period (spend zero, the next end a period later) and is admitted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_first_request_after_a_budget_period_ends_starts_a_new_one() {
        let f = Fixture::new().await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        f.charge(&rec, 1.0).await;
        f.keys.flush().await.unwrap();
        f.budget_period_ended(1.0, -60).await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        let refused = f.keys.admit(&rec, "m").await.unwrap_err();
        assert!(refused.to_string().contains("budget exceeded"), "{refused}");

        f.budget_period_ended(1.0, 5).await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        let t = record::now();
        f.keys.admit(&rec, "m").await.unwrap();
        let stored = f.stored().await;
        assert_eq!(stored.spend, 0.0);
        let start = stored.budget_period_start.unwrap();
        assert!((t..=record::now()).contains(&start), "{start} from {t}");
        assert_eq!(stored.budget_reset_at, Some(start + 86_400));
        assert_eq!(f.spend_now().await, 0.0);
    }

    /// A call charged just before its key's budget period ended, still buffered when the
    /// next request reset the budget, is written after the reset: its log is kept but its
    /// spend stays in the period that ended (it was once added to the new period's spend).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn spend_charged_before_a_budget_reset_and_written_after_it_counts_in_the_old_period() {
        let f = Fixture::new().await;
        f.budget_period_ended(1.0, 5).await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        // Charged (not yet written) ten seconds ago, in the period that has ended.
        f.keys.spend.push(f.log(0.25, record::now() - 10));
        f.keys.admit(&rec, "m").await.unwrap();
        assert_eq!(
            f.spend_now().await,
            0.0,
            "the buffered old spend is not this period's"
        );
        let fresh = f.keys.authenticate(&f.key).await.unwrap();
        assert_eq!(f.charge(&fresh, 0.5).await, 0.5);
        assert_eq!(f.keys.flush().await.unwrap(), 2);
        assert_eq!(f.stored().await.spend, 0.5);
        assert_eq!(f.spend_now().await, 0.5);
        let logs = f.keys.store.logs(&f.token(), "", 10).await.unwrap();
        assert_eq!(logs.len(), 2, "both calls' logs are kept");
    }

    /// The same for another instance's buffered spend, written after this one reset the
    /// budget: spend charged before the new period began adds nothing to it, spend charged
    /// since does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn another_instances_spend_from_before_a_reset_adds_nothing_to_the_new_period() {
        let f = Fixture::new().await;
        f.budget_period_ended(1.0, 5).await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        f.keys.admit(&rec, "m").await.unwrap();
        let start = f.stored().await.budget_period_start.unwrap();
        assert_eq!(f.charge_elsewhere_at(0.25, start - 1).await, 0.0);
        assert_eq!(f.charge_elsewhere_at(0.125, start).await, 0.125);
        assert_eq!(f.stored().await.spend, 0.125);
        // One batch across the start: only its calls charged since count.
        let batch = [
            f.log(1.0, start - 2),
            f.log(0.5, start - 1),
            f.log(0.25, start),
            f.log(0.125, start + 1),
        ];
        let added = f.keys.store.record(&batch).await.unwrap();
        assert_eq!(added.get(&f.token()), Some(&0.375));
        assert_eq!(f.stored().await.spend, 0.5);
    }

    /// A request that began before a flush wrote the key's spend is charged after it: the
    /// spend it reports counts what the flush wrote (it once counted neither the record it
    /// began with, older than the write, nor the buffer, which no longer held it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn spend_charged_across_a_flush_counts_what_the_flush_wrote() {
        let f = Fixture::new().await;
        let began = f.keys.authenticate(&f.key).await.unwrap();
        assert_eq!(f.charge(&began, 0.25).await, 0.25);
        assert_eq!(f.charge(&began, 0.25).await, 0.5);
        f.keys.flush().await.unwrap();
        // `began` still says 0 spent; the cached record says 0.5, the buffer nothing.
        assert_eq!(began.spend, 0.0);
        assert_eq!(f.charge(&began, 0.25).await, 0.75);
        assert_eq!(f.keys.spend(&began).await.unwrap(), 0.75);
        assert_eq!(f.spend_now().await, 0.75);
    }

    /// A cache refresh reads the key, a flush then commits the buffered spend and moves it
    /// into the cached record, and only then is the refresh's record cached: the spend the
    /// read did not see is still counted (it was once lost until the next refresh).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_key_read_before_a_flush_and_cached_after_it_loses_no_spend() {
        let f = Fixture::new().await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        f.charge(&rec, 0.25).await;
        f.charge(&rec, 0.25).await;
        let writes = f.keys.spend.writes();
        let read = f.keys.store.get(&f.token()).await.unwrap();
        assert_eq!(read.as_ref().unwrap().spend, 0.0);
        f.keys.flush().await.unwrap();
        let cached = f.keys.remember(&f.token(), read, writes).unwrap();
        assert_eq!(f.keys.spend(&cached).await.unwrap(), 0.5);
        // The next request reads the key again, with no write in between.
        assert_eq!(f.spend_now().await, 0.5);
    }

    /// A cache refresh reads the key after a flush committed the buffered spend but before
    /// the flush took it out of the buffer: the spend is counted once (it was once counted
    /// twice, in the record read and in the buffer, then added to the record again).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_read_between_a_commit_and_the_buffer_emptying_counts_the_spend_once() {
        let f = Fixture::new().await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        f.charge(&rec, 0.25).await;
        f.charge(&rec, 0.25).await;
        let (reached_tx, reached) = tokio::sync::oneshot::channel();
        let (resume, resume_rx) = tokio::sync::oneshot::channel();
        *f.keys.spend.pause_after_commit.lock().unwrap() = Some((reached_tx, resume_rx));
        let keys = Arc::clone(&f.keys);
        let flush = tokio::spawn(async move { keys.flush().await });
        reached.await.unwrap();
        let writes = f.keys.spend.writes();
        let read = f.keys.store.get(&f.token()).await.unwrap();
        assert_eq!(read.as_ref().unwrap().spend, 0.5, "the batch is committed");
        let cached = f.keys.remember(&f.token(), read, writes).unwrap();
        assert_eq!(f.keys.spend(&cached).await.unwrap(), 0.5);
        resume.send(()).unwrap();
        assert_eq!(flush.await.unwrap(), Ok(2));
        assert_eq!(f.keys.spend(&cached).await.unwrap(), 0.5);
        assert_eq!(f.spend_now().await, 0.5);
    }

    /// A key in use is read again in the background once its entry is due: the request that
    /// finds it due goes on at once with the cached record (its future is ready on the first
    /// poll: it awaits nothing), and the read lands in the cache for the next ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_key_due_for_a_refresh_is_served_at_once_and_read_in_the_background() {
        use futures::FutureExt;
        let f = Fixture::new().await;
        let first = f.keys.authenticate(&f.key).await.unwrap();
        // Another instance charges the key; then this instance's entry comes due.
        f.charge_elsewhere(1.0).await;
        f.keys
            .cache
            .lock()
            .unwrap()
            .get_mut(&f.token())
            .unwrap()
            .refresh_at = Instant::now();
        let served = f.keys.authenticate(&f.key).now_or_never();
        let served = served
            .expect("a due entry does not wait for the database")
            .unwrap();
        assert!(Arc::ptr_eq(&served, &first), "the cached record is served");
        let mut read = None;
        for _ in 0..500 {
            let cached = f.keys.cache.lock().unwrap()[&f.token()].record.clone();
            if let Some(rec) = cached.filter(|r| !Arc::ptr_eq(r, &first)) {
                read = Some(rec);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let read = read.expect("the background read landed in the cache");
        assert_eq!(read.spend, 1.0);
        assert!(!f.keys.cache.lock().unwrap()[&f.token()].refreshing);
        assert_eq!(f.spend_now().await, 1.0);
    }

    /// With no write of this instance's in between, a refresh takes the database's spend:
    /// what other instances wrote since the last read is counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_key_read_with_no_write_in_between_takes_the_databases_spend() {
        let f = Fixture::new().await;
        let rec = f.keys.authenticate(&f.key).await.unwrap();
        f.charge(&rec, 0.25).await;
        let writes = f.keys.spend.writes();
        // Another instance's flush.
        f.charge_elsewhere(1.0).await;
        let read = f.keys.store.get(&f.token()).await.unwrap();
        let cached = f.keys.remember(&f.token(), read, writes).unwrap();
        assert_eq!(f.keys.spend(&cached).await.unwrap(), 1.25);
        f.keys.flush().await.unwrap();
        assert_eq!(f.spend_now().await, 1.25);
    }
}
