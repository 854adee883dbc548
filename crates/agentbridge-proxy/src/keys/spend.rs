//! The spend buffer: calls charged but not yet written to the database.
//!
//! Charging never waits on the database: a call's spend log goes into this buffer, and a
//! background task writes the buffer every 0.5 s in batches of [`BATCH`], oldest first. A
//! batch leaves the buffer only once its transaction has committed; a failed batch stays and
//! is tried again on the next tick, and because the write is idempotent (keyed by request
//! id) a batch whose commit succeeded but whose answer was lost is not counted twice.
//!
//! A key's spend as this instance knows it is the cached record's (the database's figure as
//! last read, plus what flushes have written since) plus what the buffer still holds of calls
//! charged in the key's current budget period (the buffer keeps each key's spend per second
//! charged; a batch written after a reset adds to the key only the calls charged since). A read
//! of the database that a batch's commit overlaps may or may not hold that batch: [`Writes`]
//! tells the key cache whether one did (see [`SpendBuffer::writes`]).
//!
//! The buffer is bounded: at [`MAX_BUFFERED`] calls (the database has been unreachable for a
//! while) new virtual-key requests are refused with 503 until it drains, so no answer is
//! ever given that cannot be charged. Calls already admitted are still charged, so the buffer
//! can exceed the bound by at most the requests in flight.

use super::store::{SpendLog, Store};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Calls buffered at most before new virtual-key requests are refused.
pub const MAX_BUFFERED: usize = 100_000;
/// Spend logs written per transaction.
pub const BATCH: usize = 500;

#[derive(Debug, Default)]
struct Pending {
    logs: VecDeque<SpendLog>,
    /// Per key and second charged, the spend of `logs` and how many of them they are.
    spend: HashMap<String, BTreeMap<i64, (f64, usize)>>,
}

/// A key's spend not yet written, from [`SpendBuffer::with_unwritten`].
#[derive(Debug, Clone, Copy)]
pub struct Unwritten<'a> {
    buffer: &'a SpendBuffer,
    token: &'a str,
}

impl Unwritten<'_> {
    /// The spend charged at or after `start` (all of it for `None`): a budget period's share.
    pub fn since(&self, start: Option<i64>) -> f64 {
        self.buffer.of(self.token, start)
    }
}

/// Where the writing of spend stood at some moment, from [`SpendBuffer::writes`]: a count
/// of the moments a batch's commit began and ended, odd while one may be committed in the
/// database but still counted in the buffer (from just before its transaction until it has
/// left the buffer; after a write that failed, until a later one succeeds, since a commit
/// whose answer was lost may still have happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writes(u64);

impl Writes {
    /// Whether no batch was between its commit and leaving the buffer at that moment.
    fn settled(self) -> bool {
        self.0.is_multiple_of(2)
    }
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
    /// See [`Writes`]. Changed only by the one writer, the end of a batch under `moving`.
    writes: AtomicU64,
    /// A test's way into a flush between a batch's commit and the batch leaving the buffer.
    #[cfg(test)]
    pub(crate) pause_after_commit: Mutex<Option<PauseAfterCommit>>,
}

/// Said by a flush once its batch is committed; the flush goes on when the test answers.
#[cfg(test)]
pub(crate) type PauseAfterCommit = (
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
);

impl SpendBuffer {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Buffers one call's spend.
    pub fn push(&self, log: SpendLog) {
        let mut p = self.pending();
        let e = p
            .spend
            .entry(log.api_key.clone())
            .or_default()
            .entry(log.created_at)
            .or_default();
        e.0 += log.spend;
        e.1 += 1;
        p.logs.push_back(log);
    }

    /// The key's spend not yet written, charged at or after `start` (all of it for `None`).
    fn of(&self, token: &str, start: Option<i64>) -> f64 {
        self.pending().spend.get(token).map_or(0.0, |seconds| {
            seconds
                .range(start.unwrap_or(i64::MIN)..)
                .map(|(_, (spend, _))| spend)
                .sum()
        })
    }

    /// `f` of the key's spend not yet written, while no flush is moving written spend out
    /// of the buffer (see [`Self::flush`]): what `f` reads of it and of what a flush's
    /// `written` updates is from one moment.
    pub fn with_unwritten<R>(&self, token: &str, f: impl FnOnce(Unwritten<'_>) -> R) -> R {
        let _still = self
            .moving
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(Unwritten {
            buffer: self,
            token,
        })
    }

    /// Where the writing stands now: taken before reading a key from the database, and
    /// given to [`Self::if_unchanged`] with what was read.
    pub fn writes(&self) -> Writes {
        Writes(self.writes.load(Ordering::SeqCst))
    }

    /// `f(true)` if no batch could have been committed between `before` and now (the
    /// database's figure read since `before` then matches what the buffer holds), `f(false)`
    /// if one could; in both cases no batch leaves the buffer while `f` runs, so what `f`
    /// reads and writes of what a flush's `written` updates stays in step with the buffer.
    pub fn if_unchanged<R>(&self, before: Writes, f: impl FnOnce(bool) -> R) -> R {
        let _still = self
            .moving
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(before.settled() && self.writes() == before)
    }

    /// Marks a batch's commit as possibly in the database (odd), unless an earlier failed
    /// write already left it so.
    fn commit_may_begin(&self) {
        let n = self.writes.load(Ordering::SeqCst);
        if Writes(n).settled() {
            self.writes.store(n + 1, Ordering::SeqCst);
        }
    }

    /// Marks the committed batch as out of the buffer (even). Called under `moving`.
    fn commit_landed(&self) {
        let n = self.writes.load(Ordering::SeqCst);
        if !Writes(n).settled() {
            self.writes.store(n + 1, Ordering::SeqCst);
        }
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
    /// as [`super::request_log::RequestLogBuffer::flush`] says). `written` is told the
    /// spend each batch added to each key once it is committed (a log charged before its
    /// key's budget period began adds none: see [`Store::record`]), in one step with the
    /// batch leaving the buffer as [`Self::with_unwritten`] sees it. Returns the number of
    /// calls written, or the error that stopped the writing (what was not written stays
    /// buffered).
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
            self.commit_may_begin();
            let added = store.record(&batch).await.map_err(|e| (total, e))?;
            #[cfg(test)]
            {
                let pause = self.pause_after_commit.lock().unwrap().take();
                if let Some((reached, resume)) = pause {
                    let _ = reached.send(());
                    let _ = resume.await;
                }
            }
            let mut amounts: HashMap<(&str, i64), (f64, usize)> = HashMap::new();
            for l in &batch {
                let e = amounts.entry((&l.api_key, l.created_at)).or_default();
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
                for ((token, second), (amount, n)) in amounts {
                    let Some(seconds) = p.spend.get_mut(token) else {
                        continue;
                    };
                    if let Some(left) = seconds.get_mut(&second) {
                        left.0 -= amount;
                        left.1 = left.1.saturating_sub(n);
                        if left.1 == 0 {
                            seconds.remove(&second);
                        }
                    }
                    if seconds.is_empty() {
                        p.spend.remove(token);
                    }
                }
            }
            written(&added);
            self.commit_landed();
            drop(moving);
            total += batch.len();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::record::KeyRecord;

    async fn store_with_key(token: &str) -> (Store, std::path::PathBuf) {
        store_with_keys(&[token]).await
    }

    /// A store on a new SQLite file holding keys with these tokens (no limits, nothing spent).
    pub(crate) async fn store_with_keys(tokens: &[&str]) -> (Store, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("agentbridge-spend-{}.db", uuid::Uuid::new_v4()));
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        for token in tokens {
            store
                .insert(&KeyRecord::unlimited(
                    (*token).into(),
                    "sk-...test".into(),
                    0,
                ))
                .await
                .unwrap();
        }
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
        assert_eq!(buffer.of("t", None), (2 * BATCH + 7) as f64 * 0.25);
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
        assert!(buffer.is_empty() && buffer.of("t", None) == 0.0);
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
        assert_eq!(buffer.of("t", None), 1.0);
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
        assert_eq!(buffer.of("t", None), 0.75);
        sqlx::query("ALTER TABLE away RENAME TO spend_logs")
            .execute(&other)
            .await
            .unwrap();
        // The failed commit may have happened: reads stay unsure until a write succeeds.
        assert!(!buffer.writes().settled());
        assert_eq!(buffer.flush(&store, |_| {}).await.unwrap(), 3);
        assert!(buffer.writes().settled());
        assert!(buffer.is_empty());
        assert_eq!(spend_of(&store, "t").await, 0.75);
        crate::keys::store::remove_db(&path);
    }
}
