//! Upkeep of the key service: the background task that writes buffered spend and watches
//! the database and Redis, and the state of both as `/health/readiness` reports it.

use super::{Cached, FLUSH_EVERY, Keys, spend};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The state of the gateway's dependencies, for `/health/readiness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Whether the database answered the last call.
    pub database: bool,
    /// `Some(reachable)` with Redis configured.
    pub redis: Option<bool>,
    /// Calls whose spend is not yet written.
    pub spend_buffered: usize,
}

/// How often the request log is pruned to its retention.
pub const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long the last flush at shutdown keeps trying while the database does not answer.
pub const FINAL_FLUSH_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

impl Keys {
    /// The state of the database and Redis as this instance last found them.
    pub fn health(&self) -> Health {
        Health {
            database: self.database_up.load(Ordering::Acquire),
            redis: self.limiter.redis_reachable(),
            spend_buffered: self.spend.len(),
        }
    }

    /// Marks the database unreachable after a failed call; warns once per outage.
    pub(super) fn database_failed(&self, e: &dyn std::fmt::Display) {
        self.database_pinged.store(false, Ordering::Release);
        if self.database_up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                error = %e,
                max_buffered = spend::MAX_BUFFERED,
                "the database is unreachable: cached keys keep working, unknown keys get 503, spend is buffered"
            );
        }
    }

    /// Marks the database reachable after a call that worked; says so once per recovery.
    pub(super) fn database_answered(&self) {
        if !self.database_up.swap(true, Ordering::AcqRel) {
            tracing::info!(
                spend_buffered = self.spend.len(),
                "the database is reachable again: buffered spend is being written"
            );
        }
    }

    /// Writes buffered spend. What cannot be written stays buffered for the next try.
    pub async fn flush(&self) -> Result<usize, String> {
        let written = self
            .spend
            .flush(&self.store, |amounts| {
                // The cached records' spend follows what was written (the buffer no longer
                // holds it).
                if let Ok(mut c) = self.cache.lock() {
                    for (token, amount) in amounts {
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
            })
            .await;
        match written {
            Ok(n) => {
                if n > 0 {
                    self.database_answered();
                }
                Ok(n)
            }
            Err((n, e)) => {
                self.database_failed(&e);
                Err(format!(
                    "spend flush stopped after {n} calls: {e}; {} calls stay buffered",
                    self.spend.len()
                ))
            }
        }
    }

    /// Background care, every [`FLUSH_EVERY`]: checks an unreachable database (back once
    /// it answers two checks in a row, so a server still shutting down does not count),
    /// writes buffered spend, and reconnects to Redis and hands it what was counted while it
    /// was away.
    async fn tend(&self) {
        let database = async {
            if !self.database_up.load(Ordering::Acquire) {
                match self.store.ping().await {
                    Ok(()) if self.database_pinged.swap(true, Ordering::AcqRel) => {
                        self.database_answered()
                    }
                    Ok(()) => return,
                    Err(e) => {
                        self.database_pinged.store(false, Ordering::Release);
                        tracing::debug!(error = %e, "database still unreachable");
                        return;
                    }
                }
            }
            if let Err(e) = self.flush().await {
                tracing::debug!("{e}");
            }
            self.tend_request_log().await;
        };
        tokio::join!(database, self.limiter.tend());
    }

    /// Writes the buffered request log, and once every [`PRUNE_EVERY`] deletes logged
    /// requests (and expired UI sessions) older than the retention.
    async fn tend_request_log(&self) {
        if let Err(e) = self.requests.flush(&self.store).await {
            tracing::debug!(error = %e, buffered = self.requests.len(), "request log not written yet");
            return;
        }
        let due = self
            .pruned
            .lock()
            .map(|mut last| {
                let due = last.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            })
            .unwrap_or(false);
        if due {
            let t = super::record::now();
            match self
                .store
                .prune_requests(t * 1000 - self.retention_ms)
                .await
            {
                Ok(n) if n > 0 => {
                    tracing::info!(rows = n, "request log: pruned rows past the retention")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "request log: pruning failed; trying again later")
                }
            }
            if let Err(e) = self.store.prune_sessions(t).await {
                tracing::warn!(error = %e, "UI sessions: pruning failed");
            }
        }
    }

    /// Starts the background task that writes spend and watches the database and Redis
    /// ([`FLUSH_EVERY`]); it ends when `stop` resolves, after a last flush (tried again for
    /// up to [`FINAL_FLUSH_WINDOW`] if the database does not answer).
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
                me.tend().await;
            }
            if let Err(e) = me.requests.flush(&me.store).await {
                tracing::warn!(error = %e, rows = me.requests.len(), "request log: the last rows are lost at shutdown");
            }
            let deadline = tokio::time::Instant::now() + FINAL_FLUSH_WINDOW;
            loop {
                match me.flush().await {
                    Ok(n) => {
                        tracing::info!(records = n, "spend writer stopped after a final flush");
                        return;
                    }
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        tracing::error!(
                            calls = me.spend.len(),
                            "{e}; the spend of these calls is lost at shutdown"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("{e}; trying again before exiting");
                        tokio::time::sleep(FLUSH_EVERY).await;
                    }
                }
            }
        })
    }
}
