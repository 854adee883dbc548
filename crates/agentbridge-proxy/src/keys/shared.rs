//! Counters shared by every instance through Redis, and what happens while Redis is away.
//!
//! Every Redis call is bounded ([`REDIS_TIMEOUT`]; the connection manager also times out each
//! connection attempt and each response, and retries a lost connection with a short backoff).
//! The first failure marks Redis unreachable (one warning): from then on no request waits on
//! Redis. Counting goes on in this instance's own windows (or, under
//! [`RedisOutage::Refuse`], requests that need a shared counter get 503), and what is
//! counted is kept as a debt. A background task ([`Shared::tend`], every 0.5 s) probes Redis;
//! when it answers, the debt is added to Redis in one atomic transaction, Redis is marked
//! reachable again (one log line) and requests use it again.
//!
//! Spend kept as a debt is added to Redis's shared spend unless Redis lost its data meanwhile
//! (a restart without persistence), which the `agentbridge:epoch` marker tells: then the
//! shared spend is seeded afresh from the database's figure on its next use, and the debt,
//! which the database holds (or will, from the spend buffer), is not added a second time.

use super::debt::{Owed, OwedSpend, WINDOW_TTL, rpm_key, spend_key, tpm_key};
use super::limiter::{Refused, Windows, minute};
use super::record::now;
use crate::config::RedisOutage;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The longest any Redis call (connection included) may take.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Connection attempts the connection manager retries after a failed one (with its
/// exponential backoff, capped at [`RECONNECT_MAX_DELAY_MS`]) before giving up until the next
/// call.
const RECONNECT_RETRIES: usize = 1;
/// The longest pause between two connection attempts.
const RECONNECT_MAX_DELAY_MS: u64 = 1000;
/// The key whose value changes when Redis loses its data.
const EPOCH_KEY: &str = "agentbridge:epoch";

/// Counters in Redis, with this instance's windows while Redis is unreachable.
pub struct Shared {
    client: redis::Client,
    /// Set once the first connection is made (at start, or later by [`Self::tend`]).
    connection: OnceLock<ConnectionManager>,
    policy: RedisOutage,
    up: AtomicBool,
    /// Unix seconds since when Redis is unreachable (0 while reachable).
    down_since: AtomicI64,
    fallback: Windows,
    owed: Mutex<Owed>,
    /// The `agentbridge:epoch` value last seen.
    epoch: Mutex<Option<String>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("policy", &self.policy)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Connects to Redis at `url`. A malformed URL is an error; an unreachable server is not
    /// (the gateway starts with per-instance counting and connects when it can).
    pub async fn connect(url: &str, policy: RedisOutage) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis_url: {e}"))?;
        let me = Self {
            client,
            connection: OnceLock::new(),
            policy,
            up: AtomicBool::new(false),
            down_since: AtomicI64::new(now()),
            fallback: Windows::default(),
            owed: Mutex::new(Owed::default()),
            epoch: Mutex::new(None),
        };
        match me.open().await {
            Ok(()) => match me.epoch().await {
                Ok(e) => {
                    *lock(&me.epoch) = Some(e);
                    me.up.store(true, Ordering::Release);
                    me.down_since.store(0, Ordering::Release);
                }
                Err(e) => me.announce_down(&e),
            },
            Err(e) => me.announce_down(&e),
        }
        Ok(me)
    }

    /// Makes the connection manager, if there is none yet.
    async fn open(&self) -> Result<(), String> {
        if self.connection.get().is_some() {
            return Ok(());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY_MS);
        let made = tokio::time::timeout(
            REDIS_TIMEOUT * 4,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| format!("no connection within {:?}", REDIS_TIMEOUT * 4))?
        .map_err(|e| e.to_string())?;
        let _ = self.connection.set(made);
        Ok(())
    }

    /// Runs `pipe`, bounded by [`REDIS_TIMEOUT`].
    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, String> {
        let Some(cm) = self.connection.get() else {
            return Err("not connected".into());
        };
        let mut cm = cm.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async(&mut cm)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
        }
    }

    /// The data epoch: the marker's value, set now if Redis has none (a new or emptied Redis).
    async fn epoch(&self) -> Result<String, String> {
        let mut pipe = redis::pipe();
        pipe.set_nx(EPOCH_KEY, uuid::Uuid::new_v4().to_string())
            .ignore()
            .get(EPOCH_KEY);
        let (e,): (String,) = self.query(&pipe).await?;
        Ok(e)
    }

    /// Whether Redis is in use (reachable at the last try).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    fn announce_down(&self, error: &str) {
        self.down_since.store(now(), Ordering::Release);
        match self.policy {
            RedisOutage::PerInstance => tracing::warn!(
                error,
                "Redis is unreachable: rate limits and budgets are counted per instance until it returns"
            ),
            RedisOutage::Refuse => tracing::warn!(
                error,
                "Redis is unreachable: requests of keys with rate limits or budgets get 503 until it returns"
            ),
        }
    }

    /// Marks Redis unreachable after a failed call; warns once per outage.
    fn went_down(&self, error: &str) {
        if self.up.swap(false, Ordering::AcqRel) {
            self.announce_down(error);
        }
    }

    fn refuse_if_asked(&self) -> Result<(), Refused> {
        match self.policy {
            RedisOutage::PerInstance => Ok(()),
            RedisOutage::Refuse => Err(
                "rate limits and budgets are shared through Redis, which is unreachable; retry shortly"
                    .into(),
            ),
        }
    }

    /// Counts one request in the current minute; returns the count including it.
    pub async fn count_request(&self, token: &str, now: i64) -> Result<i64, Refused> {
        if self.is_up() {
            let key = rpm_key(token, minute(now));
            let mut pipe = redis::pipe();
            pipe.atomic()
                .incr(&key, 1)
                .expire(&key, WINDOW_TTL)
                .ignore();
            match self.query::<(i64,)>(&pipe).await {
                Ok((n,)) => return Ok(n),
                Err(e) => self.went_down(&e),
            }
        }
        self.refuse_if_asked()?;
        *lock(&self.owed)
            .requests
            .entry((token.to_string(), minute(now)))
            .or_default() += 1;
        Ok(self.fallback.count_request(token, now))
    }

    /// Tokens used in the current minute.
    pub async fn tokens(&self, token: &str, now: i64) -> Result<i64, Refused> {
        if self.is_up() {
            let mut pipe = redis::pipe();
            pipe.get(tpm_key(token, minute(now)));
            match self.query::<(Option<i64>,)>(&pipe).await {
                Ok((n,)) => return Ok(n.unwrap_or(0)),
                Err(e) => self.went_down(&e),
            }
        }
        self.refuse_if_asked()?;
        Ok(self.fallback.tokens(token, now))
    }

    /// Adds tokens to the current minute.
    pub async fn add_tokens(&self, token: &str, n: i64, now: i64) {
        if self.is_up() {
            let key = tpm_key(token, minute(now));
            let mut pipe = redis::pipe();
            pipe.atomic()
                .incr(&key, n)
                .ignore()
                .expire(&key, WINDOW_TTL)
                .ignore();
            match self.query::<()>(&pipe).await {
                Ok(()) => return,
                Err(e) => self.went_down(&e),
            }
        }
        *lock(&self.owed)
            .tokens
            .entry((token.to_string(), minute(now)))
            .or_default() += n;
        self.fallback.add_tokens(token, n, now);
    }

    /// One round trip: seed the spend with `seed` if Redis has none, then add `amount` (or
    /// read it).
    async fn seed_and_add(
        &self,
        token: &str,
        seed: f64,
        amount: Option<f64>,
    ) -> Result<f64, String> {
        let key = spend_key(token);
        let mut pipe = redis::pipe();
        pipe.atomic().set_nx(&key, seed).ignore();
        match amount {
            Some(a) => pipe.incr(&key, a),
            None => pipe.get(&key),
        };
        let (v,): (f64,) = self.query(&pipe).await?;
        Ok(v)
    }

    /// The shared spend; `None` while Redis is unreachable (the caller uses its own figure).
    pub async fn spend(&self, token: &str, seed: f64) -> Result<Option<f64>, Refused> {
        if self.is_up() {
            match self.seed_and_add(token, seed, None).await {
                Ok(v) => return Ok(Some(v)),
                Err(e) => self.went_down(&e),
            }
        }
        self.refuse_if_asked()?;
        Ok(None)
    }

    /// Adds to the shared spend; returns the new total, or `None` while Redis is unreachable
    /// (the amount is then owed to Redis).
    pub async fn add_spend(&self, token: &str, amount: f64, seed: f64) -> Option<f64> {
        if self.is_up() {
            match self.seed_and_add(token, seed, Some(amount)).await {
                Ok(v) => return Some(v),
                Err(e) => self.went_down(&e),
            }
        }
        lock(&self.owed).add_spend(token, amount, seed);
        None
    }

    /// Zeroes the shared spend at a budget reset (later, if Redis is unreachable now).
    pub async fn reset_spend(&self, token: &str) {
        if self.is_up() {
            let mut pipe = redis::pipe();
            pipe.set(spend_key(token), 0.0f64).ignore();
            match self.query::<()>(&pipe).await {
                Ok(()) => return,
                Err(e) => self.went_down(&e),
            }
        }
        lock(&self.owed).spend.insert(
            token.to_string(),
            OwedSpend {
                reset: true,
                ..OwedSpend::default()
            },
        );
    }

    /// Hands Redis the debt. On failure the debt is kept for the next try.
    async fn pay_debt(&self) -> Result<usize, String> {
        let epoch = self.epoch().await?;
        let data_lost = lock(&self.epoch).as_ref().is_some_and(|e| *e != epoch);
        let owed = std::mem::take(&mut *lock(&self.owed));
        if owed.is_empty() {
            *lock(&self.epoch) = Some(epoch);
            return Ok(0);
        }
        let n = owed.requests.len() + owed.tokens.len() + owed.spend.len();
        match self
            .query::<()>(&owed.transaction(minute(now()), data_lost))
            .await
        {
            Ok(()) => {
                *lock(&self.epoch) = Some(epoch);
                if data_lost {
                    tracing::info!(
                        "Redis lost its data while away: shared spend is seeded afresh from the database"
                    );
                }
                Ok(n)
            }
            Err(e) => {
                lock(&self.owed).merge(owed);
                Err(e)
            }
        }
    }

    /// Background care, every 0.5 s: while Redis is unreachable, tries it and, when it
    /// answers, hands it the debt and puts it back in use; while it is reachable, hands it
    /// what requests that raced with its return counted here.
    pub async fn tend(&self) {
        if self.is_up() {
            if !lock(&self.owed).is_empty()
                && let Err(e) = self.pay_debt().await
            {
                self.went_down(&e);
            }
            return;
        }
        if let Err(e) = self.open().await {
            tracing::debug!(error = %e, "Redis still unreachable");
            return;
        }
        match self.pay_debt().await {
            Ok(n) => {
                let since = self.down_since.swap(0, Ordering::AcqRel);
                self.up.store(true, Ordering::Release);
                tracing::info!(
                    unreachable_secs = if since > 0 { now() - since } else { 0 },
                    counters = n,
                    "Redis is reachable again: limits are shared again; what was counted meanwhile was added"
                );
            }
            Err(e) => tracing::debug!(error = %e, "Redis still unreachable"),
        }
    }
}
