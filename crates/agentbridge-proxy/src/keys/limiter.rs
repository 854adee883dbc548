//! Per-key counters: requests and tokens per minute, and spend for budgets. In-process by
//! default (limits then hold per instance); in Redis when configured, so that every instance
//! enforces one limit and one budget.

use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counts of one key in one minute.
#[derive(Debug, Default, Clone, Copy)]
pub struct Window {
    minute: i64,
    requests: i64,
    tokens: i64,
}

/// Where the counters live.
pub enum Limiter {
    /// In this process.
    Local(Mutex<HashMap<String, Window>>),
    /// In Redis (`agentbridge:rpm:*`, `agentbridge:tpm:*`, `agentbridge:spend:*`).
    Redis(redis::aio::ConnectionManager),
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local(_) => "Limiter::Local",
            Self::Redis(_) => "Limiter::Redis",
        })
    }
}

type RResult<T> = Result<T, String>;

fn minute(now: i64) -> i64 {
    now / 60
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

impl Limiter {
    /// Counters in this process.
    pub fn local() -> Self {
        Self::Local(Mutex::new(HashMap::new()))
    }

    /// Connects to Redis at `url`.
    pub async fn redis(url: &str) -> RResult<Self> {
        let client = redis::Client::open(url).map_err(|e| format!("redis url: {e}"))?;
        let cm = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| format!("redis connect: {e}"))?;
        Ok(Self::Redis(cm))
    }

    /// Counts one request in the current minute; returns the count including it.
    pub async fn count_request(&self, token: &str, now: i64) -> RResult<i64> {
        match self {
            Self::Local(m) => {
                let mut m = m.lock().map_err(|_| "limiter lock poisoned".to_string())?;
                let w = current(&mut m, token, now);
                w.requests += 1;
                Ok(w.requests)
            }
            Self::Redis(cm) => {
                let key = format!("agentbridge:rpm:{token}:{}", minute(now));
                let mut cm = cm.clone();
                let (n,): (i64,) = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .expire(&key, 120)
                    .ignore()
                    .query_async(&mut cm)
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
                Ok(n)
            }
        }
    }

    /// Tokens used in the current minute.
    pub async fn tokens(&self, token: &str, now: i64) -> RResult<i64> {
        match self {
            Self::Local(m) => {
                let m = m.lock().map_err(|_| "limiter lock poisoned".to_string())?;
                Ok(m.get(token)
                    .filter(|w| w.minute == minute(now))
                    .map(|w| w.tokens)
                    .unwrap_or(0))
            }
            Self::Redis(cm) => {
                let mut cm = cm.clone();
                let v: Option<i64> = cm
                    .get(format!("agentbridge:tpm:{token}:{}", minute(now)))
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
                Ok(v.unwrap_or(0))
            }
        }
    }

    /// Adds tokens to the current minute.
    pub async fn add_tokens(&self, token: &str, n: i64, now: i64) -> RResult<()> {
        match self {
            Self::Local(m) => {
                let mut m = m.lock().map_err(|_| "limiter lock poisoned".to_string())?;
                let w = current(&mut m, token, now);
                w.tokens += n;
                Ok(())
            }
            Self::Redis(cm) => {
                let key = format!("agentbridge:tpm:{token}:{}", minute(now));
                let mut cm = cm.clone();
                let _: () = redis::pipe()
                    .atomic()
                    .incr(&key, n)
                    .ignore()
                    .expire(&key, 120)
                    .ignore()
                    .query_async(&mut cm)
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
                Ok(())
            }
        }
    }

    /// Shared spend of the key (Redis only); seeded from `db_spend` the first time.
    pub async fn shared_spend(&self, token: &str, db_spend: f64) -> RResult<Option<f64>> {
        self.seed_and_add(token, db_spend, None).await
    }

    /// Adds to the shared spend (Redis only); returns the new total.
    pub async fn add_spend(&self, token: &str, amount: f64, db_spend: f64) -> RResult<Option<f64>> {
        self.seed_and_add(token, db_spend, Some(amount)).await
    }

    /// One round trip: seed the spend with the database's figure if Redis has none, then add
    /// (or read) it.
    async fn seed_and_add(
        &self,
        token: &str,
        db_spend: f64,
        amount: Option<f64>,
    ) -> RResult<Option<f64>> {
        let Self::Redis(cm) = self else {
            return Ok(None);
        };
        let key = format!("agentbridge:spend:{token}");
        let mut cm = cm.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().set_nx(&key, db_spend).ignore();
        match amount {
            Some(a) => pipe.incr(&key, a),
            None => pipe.get(&key),
        };
        let (v,): (f64,) = pipe
            .query_async(&mut cm)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        Ok(Some(v))
    }

    /// Zeroes the shared spend at a budget reset (Redis only).
    pub async fn reset_spend(&self, token: &str) -> RResult<()> {
        let Self::Redis(cm) = self else { return Ok(()) };
        let mut cm = cm.clone();
        let _: () = cm
            .set(format!("agentbridge:spend:{token}"), 0.0f64)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        Ok(())
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
        l.add_tokens("k", 50, 121).await.unwrap();
        assert_eq!(l.tokens("k", 125).await.unwrap(), 50);
        assert_eq!(l.tokens("k", 180).await.unwrap(), 0);
        assert_eq!(l.shared_spend("k", 1.0).await.unwrap(), None);
    }
}
