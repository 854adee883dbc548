//! Per-key counters: requests and tokens per minute, and spend for budgets. In-process by
//! default (limits then hold per instance); in Redis when configured ([`Shared`]), so that
//! every instance enforces one limit and one budget.

pub use super::shared::Shared;
use crate::config::RedisOutage;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Counts of one key in one minute.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    minute: i64,
    requests: i64,
    tokens: i64,
}

/// The minute (since the epoch) that `now` (Unix seconds) falls in.
pub fn minute(now: i64) -> i64 {
    now / 60
}

/// Per-minute windows of every key, in this process.
#[derive(Debug, Default)]
pub struct Windows(Mutex<HashMap<String, Window>>);

impl Windows {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Window>> {
        // The map holds plain counts: one a panicking thread left half-written is still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key's window for the minute of `now`, started afresh when the minute changed.
    fn current<'a>(m: &'a mut HashMap<String, Window>, token: &str, now: i64) -> &'a mut Window {
        let w = m.entry(token.to_string()).or_default();
        if w.minute != minute(now) {
            *w = Window {
                minute: minute(now),
                ..Window::default()
            };
        }
        w
    }

    /// Counts one request in the minute of `now`; returns the count including it.
    pub fn count_request(&self, token: &str, now: i64) -> i64 {
        let mut m = self.map();
        let w = Self::current(&mut m, token, now);
        w.requests += 1;
        w.requests
    }

    /// Tokens used in the minute of `now`.
    pub fn tokens(&self, token: &str, now: i64) -> i64 {
        self.map()
            .get(token)
            .filter(|w| w.minute == minute(now))
            .map_or(0, |w| w.tokens)
    }

    /// Adds tokens to the minute of `now`.
    pub fn add_tokens(&self, token: &str, n: i64, now: i64) {
        Self::current(&mut self.map(), token, now).tokens += n;
    }
}

/// Where the counters live.
#[derive(Debug)]
pub enum Limiter {
    /// In this process.
    Local(Windows),
    /// In Redis (`agentbridge:rpm:*`, `agentbridge:tpm:*`, `agentbridge:spend:*`), with
    /// per-instance windows while Redis is unreachable.
    Redis(Box<Shared>),
}

/// A refusal: the counter a limit needs is unavailable (Redis unreachable under
/// [`RedisOutage::Refuse`]).
pub type Refused = String;

impl Limiter {
    /// Counters in this process.
    pub fn local() -> Self {
        Self::Local(Windows::default())
    }

    /// Counters in Redis at `url`. An unreachable Redis is not an error here: the gateway
    /// starts with per-instance windows (or refusals, by `policy`) and connects when it can.
    pub async fn redis(url: &str, policy: RedisOutage) -> Result<Self, String> {
        Ok(Self::Redis(Box::new(Shared::connect(url, policy).await?)))
    }

    /// Counts one request in the current minute; returns the count including it.
    pub async fn count_request(&self, token: &str, now: i64) -> Result<i64, Refused> {
        match self {
            Self::Local(w) => Ok(w.count_request(token, now)),
            Self::Redis(s) => s.count_request(token, now).await,
        }
    }

    /// Tokens used in the current minute.
    pub async fn tokens(&self, token: &str, now: i64) -> Result<i64, Refused> {
        match self {
            Self::Local(w) => Ok(w.tokens(token, now)),
            Self::Redis(s) => s.tokens(token, now).await,
        }
    }

    /// Adds tokens to the current minute. Never fails: the call was made, so it is counted
    /// (in Redis, or here until Redis takes it back).
    pub async fn add_tokens(&self, token: &str, n: i64, now: i64) {
        match self {
            Self::Local(w) => w.add_tokens(token, n, now),
            Self::Redis(s) => s.add_tokens(token, n, now).await,
        }
    }

    /// The key's spend across instances: `None` when this instance's own figure is the one
    /// to use (no Redis, or Redis unreachable). `seed` is this instance's figure, used when
    /// Redis has none yet.
    pub async fn shared_spend(&self, token: &str, seed: f64) -> Result<Option<f64>, Refused> {
        match self {
            Self::Local(_) => Ok(None),
            Self::Redis(s) => s.spend(token, seed).await,
        }
    }

    /// Adds to the shared spend; returns the new total (`None` as for [`Self::shared_spend`]).
    pub async fn add_spend(&self, token: &str, amount: f64, seed: f64) -> Option<f64> {
        match self {
            Self::Local(_) => None,
            Self::Redis(s) => s.add_spend(token, amount, seed).await,
        }
    }

    /// Zeroes the shared spend at a budget reset.
    pub async fn reset_spend(&self, token: &str) {
        if let Self::Redis(s) = self {
            s.reset_spend(token).await;
        }
    }

    /// Background care: reconnects to Redis and hands it what was counted while it was away.
    pub async fn tend(&self) {
        if let Self::Redis(s) = self {
            s.tend().await;
        }
    }

    /// `Some(reachable)` with Redis, `None` without.
    pub fn redis_reachable(&self) -> Option<bool> {
        match self {
            Self::Local(_) => None,
            Self::Redis(s) => Some(s.is_up()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_windows_count_per_minute() {
        let l = Limiter::local();
        assert_eq!(l.count_request("k", 60).await.unwrap(), 1);
        assert_eq!(l.count_request("k", 119).await.unwrap(), 2);
        assert_eq!(
            l.count_request("k", 120).await.unwrap(),
            1,
            "a new minute starts a new window"
        );
        l.add_tokens("k", 50, 121).await;
        assert_eq!(l.tokens("k", 125).await.unwrap(), 50);
        assert_eq!(l.tokens("k", 180).await.unwrap(), 0);
        assert_eq!(l.shared_spend("k", 1.0).await.unwrap(), None);
    }
}
