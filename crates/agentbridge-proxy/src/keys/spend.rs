//! The spend buffer: calls charged but not yet written to the database.
//!
//! Charging never waits on the database: a call's spend log goes into this buffer, and a
//! background task writes the buffer every 0.5 s in batches of [`BATCH`], oldest first. A
//! batch leaves the buffer only once its transaction has committed; a failed batch stays and
//! is tried again on the next tick, and because the write is idempotent (keyed by request
//! id) a batch whose commit succeeded but whose answer was lost is not counted twice.
//!
//! The buffer is bounded: at [`MAX_BUFFERED`] calls (the database has been unreachable for a
//! while) new virtual-key requests are refused with 503 until it drains, so no answer is
//! ever given that cannot be charged. Calls already admitted are still charged, so the buffer
//! can exceed the bound by at most the requests in flight.

use super::store::{SpendLog, Store};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// Calls buffered at most before new virtual-key requests are refused.
pub const MAX_BUFFERED: usize = 100_000;
/// Spend logs written per transaction.
pub const BATCH: usize = 500;

#[derive(Debug, Default)]
struct Pending {
    logs: VecDeque<SpendLog>,
    /// Per key, the spend of `logs` and how many of them are the key's.
    spend: HashMap<String, (f64, usize)>,
}

/// Spend not yet written.
#[derive(Debug, Default)]
pub struct SpendBuffer {
    pending: Mutex<Pending>,
    /// One writer at a time (the background task, or the final flush at shutdown).
    writer: tokio::sync::Mutex<()>,
    /// Held by a flush while a committed batch leaves the buffer and `written` is told,
    /// and by [`Self::with_unwritten`]'s readers.
    moving: std::sync::RwLock<()>,
}

impl SpendBuffer {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Buffers one call's spend.
    pub fn push(&self, log: SpendLog) {
        let mut p = self.pending();
        let e = p.spend.entry(log.api_key.clone()).or_default();
        e.0 += log.spend;
        e.1 += 1;
        p.logs.push_back(log);
    }

    /// The key's spend not yet written.
    pub fn of(&self, token: &str) -> f64 {
        self.pending().spend.get(token).map_or(0.0, |e| e.0)
    }

    /// `f` of the key's spend not yet written, while no flush is moving written spend out
    /// of the buffer (see [`Self::flush`]): what `f` reads of what a flush's `written`
    /// updates is from the same moment as the figure it is given.
    pub fn with_unwritten<R>(&self, token: &str, f: impl FnOnce(f64) -> R) -> R {
        let _still = self
            .moving
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(self.of(token))
    }

    /// Calls buffered.
    pub fn len(&self) -> usize {
        self.pending().logs.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer has reached [`MAX_BUFFERED`].
    pub fn is_full(&self) -> bool {
        self.len() >= MAX_BUFFERED
    }

    /// Writes the calls buffered when it starts, batch by batch, oldest first; calls charged
    /// meanwhile wait for the next flush (chasing them would write ever smaller transactions,
    /// as [`super::request_log::RequestLogBuffer::flush`] says). `written` is told each
    /// batch's spend per key once it is committed, in one step with the batch leaving the
    /// buffer as [`Self::with_unwritten`] sees it. Returns the number of calls written, or
    /// the error that stopped the writing (what was not written stays buffered).
    pub async fn flush(
        &self,
        store: &Store,
        mut written: impl FnMut(&HashMap<String, f64>),
    ) -> Result<usize, (usize, sqlx::Error)> {
        let _one = self.writer.lock().await;
        let mut total = 0;
        let mut left = self.len();
        loop {
            // Only this writer removes logs, and pushes go to the back: the front `n` logs
            // stay the same while the batch is written.
            let batch: Vec<SpendLog> = self
                .pending()
                .logs
                .iter()
                .take(BATCH.min(left))
                .cloned()
                .collect();
            if batch.is_empty() {
                return Ok(total);
            }
            left -= batch.len();
            store.record(&batch).await.map_err(|e| (total, e))?;
            let mut amounts: HashMap<String, (f64, usize)> = HashMap::new();
            for l in &batch {
                let e = amounts.entry(l.api_key.clone()).or_default();
                e.0 += l.spend;
                e.1 += 1;
            }
            let moving = self
                .moving
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            {
                let mut p = self.pending();
                p.logs.drain(..batch.len());
                for (token, (amount, n)) in &amounts {
                    if let Some(left) = p.spend.get_mut(token) {
                        left.0 -= amount;
                        left.1 = left.1.saturating_sub(*n);
                        if left.1 == 0 {
                            p.spend.remove(token);
                        }
                    }
                }
            }
            written(&amounts.into_iter().map(|(t, (a, _))| (t, a)).collect());
            drop(moving);
            total += batch.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::record::KeyRecord;

    async fn store_with_key(token: &str) -> (Store, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("agentbridge-spend-{}.db", uuid::Uuid::new_v4()));
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store
            .insert(&KeyRecord {
                token: token.into(),
                key_alias: None,
                key_name: "sk-...test".into(),
                models: vec![],
                max_budget: None,
                budget_duration: None,
                budget_reset_at: None,
                rpm_limit: None,
                tpm_limit: None,
                expires: None,
                metadata: serde_json::Value::Null,
                spend: 0.0,
                created_at: 0,
                deleted_at: None,
            })
            .await
            .unwrap();
        (store, path)
    }

    fn log(i: usize, token: &str) -> SpendLog {
        SpendLog {
            request_id: format!("req-{i}"),
            api_key: token.into(),
            model: "m".into(),
            spend: 0.25,
            prompt_tokens: 1,
            completion_tokens: 2,
            created_at: 0,
        }
    }

    async fn spend_of(store: &Store, token: &str) -> f64 {
        store.get(token).await.unwrap().unwrap().spend
    }

    #[tokio::test]
    async fn a_batch_written_twice_counts_once() {
        let (store, path) = store_with_key("t").await;
        let batch: Vec<SpendLog> = (0..10).map(|i| log(i, "t")).collect();
        store.record(&batch).await.unwrap();
        // A retry after a commit whose answer was lost, with one new call in it.
        let mut retry = batch.clone();
        retry.push(log(10, "t"));
        store.record(&retry).await.unwrap();
        assert_eq!(spend_of(&store, "t").await, 11.0 * 0.25);
        assert_eq!(store.logs("", "", 100).await.unwrap().len(), 11);
        crate::keys::store::remove_db(&path);
    }

    #[tokio::test]
    async fn the_buffer_is_written_in_batches_and_then_holds_nothing() {
        let (store, path) = store_with_key("t").await;
        let buffer = SpendBuffer::default();
        for i in 0..(2 * BATCH + 7) {
            buffer.push(log(i, "t"));
        }
        assert_eq!(buffer.of("t"), (2 * BATCH + 7) as f64 * 0.25);
        let mut batches = Vec::new();
        let n = buffer
            .flush(&store, |amounts| batches.push(amounts["t"]))
            .await
            .unwrap();
        assert_eq!(n, 2 * BATCH + 7);
        assert_eq!(
            batches,
            vec![BATCH as f64 * 0.25, BATCH as f64 * 0.25, 7.0 * 0.25]
        );
        assert!(buffer.is_empty() && buffer.of("t") == 0.0);
        assert_eq!(spend_of(&store, "t").await, (2 * BATCH + 7) as f64 * 0.25);
        crate::keys::store::remove_db(&path);
    }

    #[tokio::test]
    async fn calls_charged_during_a_flush_wait_for_the_next_one() {
        let (store, path) = store_with_key("t").await;
        let buffer = SpendBuffer::default();
        for i in 0..(BATCH + 3) {
            buffer.push(log(i, "t"));
        }
        // Two calls are charged while each batch is written.
        let mut next = BATCH + 3;
        let n = buffer
            .flush(&store, |_| {
                for _ in 0..2 {
                    buffer.push(log(next, "t"));
                    next += 1;
                }
            })
            .await
            .unwrap();
        assert_eq!(n, BATCH + 3, "only what was buffered when the flush began");
        assert_eq!(buffer.len(), 4);
        assert_eq!(buffer.of("t"), 1.0);
        assert_eq!(buffer.flush(&store, |_| {}).await.unwrap(), 4);
        assert_eq!(spend_of(&store, "t").await, (BATCH + 7) as f64 * 0.25);
        crate::keys::store::remove_db(&path);
    }

    #[tokio::test]
    async fn a_failed_write_keeps_the_spend_buffered_until_it_can_be_written() {
        let (store, path) = store_with_key("t").await;
        let buffer = SpendBuffer::default();
        for i in 0..3 {
            buffer.push(log(i, "t"));
        }
        // Another connection takes the table away: every write fails.
        let other = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("ALTER TABLE spend_logs RENAME TO away")
            .execute(&other)
            .await
            .unwrap();
        let (written, _) = buffer.flush(&store, |_| {}).await.unwrap_err();
        assert_eq!(written, 0);
        assert_eq!(buffer.len(), 3);
        assert_eq!(buffer.of("t"), 0.75);
        sqlx::query("ALTER TABLE away RENAME TO spend_logs")
            .execute(&other)
            .await
            .unwrap();
        assert_eq!(buffer.flush(&store, |_| {}).await.unwrap(), 3);
        assert!(buffer.is_empty());
        assert_eq!(spend_of(&store, "t").await, 0.75);
        crate::keys::store::remove_db(&path);
    }
}
