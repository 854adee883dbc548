//! The request log: one row per finished request (what the admin UI lists and charts), never
//! a prompt or an answer.
//!
//! Like spend, it is written off the request path: a finished request's record goes into a
//! bounded buffer ([`RequestLogBuffer`]) and the key service's background task writes it in
//! batches of [`BATCH`] ([`Store::write_requests`]), adding each row to its hour's rollup
//! (`request_rollup`, per hour, key and model) in the same transaction. Rows are keyed by
//! arrival time and request id. A batch's first write is a plain INSERT (its rows are new);
//! a batch written again after an error (whose commit may have landed all the same) skips
//! the rows already there and counts only the rows it inserted in the rollups, so no row
//! counts twice. A first write that meets a row already there fails and is retried that way.
//! Unlike spend, nothing is refused when the buffer is full: the oldest rows are dropped and
//! counted (the log is for looking at, not for billing). Rows older than the retention
//! (`agentbridge.request_log_retention_days`) are pruned by the same task. Reading it:
//! [`super::request_queries`].

use super::store::{Store, WRITE_TIMEOUT, bounded};
use crate::observe::{RecordSink, RequestRecord};
use sqlx::Row;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Rows buffered at most; beyond, the oldest are dropped.
pub const MAX_BUFFERED: usize = 100_000;
/// Rows written per transaction.
pub const BATCH: usize = 500;
/// Milliseconds in an hour (the rollups' bucket).
pub const HOUR_MS: i64 = 3_600_000;

/// One logged request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogRow {
    /// The request id (a fresh id for a request refused before it got one).
    pub id: String,
    /// Arrival, Unix milliseconds.
    pub time_ms: i64,
    /// The virtual key's token; empty for the master key.
    pub key_hash: String,
    /// The key's alias.
    pub key_alias: Option<String>,
    /// The model name asked for; empty when it was not one the gateway serves.
    pub model: String,
    /// The door (`chat`, `responses`, `messages`).
    pub door: Cow<'static, str>,
    /// The deployment that answered.
    pub deployment: Option<String>,
    /// HTTP status sent.
    pub status: i64,
    /// Arrival to response end, ms.
    pub latency_ms: f64,
    /// Arrival to the first piece of a streamed answer, ms.
    pub ttft_ms: Option<f64>,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// USD.
    pub cost: f64,
    /// The agent session.
    pub session: Option<String>,
    /// The error's class, if any.
    pub error_class: Option<String>,
}

impl LogRow {
    /// The row for a finished request (its strings moved, not copied: rows are made on the
    /// request path).
    pub fn from_record(r: RequestRecord) -> Self {
        Self {
            id: if r.request_id.is_empty() {
                crate::observe::new_request_id()
            } else {
                r.request_id
            },
            time_ms: (r.time * 1000.0) as i64,
            key_hash: r.hashed_key.unwrap_or_default(),
            key_alias: r.key_alias,
            model: r.requested_model.unwrap_or_default(),
            door: Cow::Borrowed(r.door),
            deployment: r.deployment_id,
            status: i64::from(r.status),
            latency_ms: r.latency * 1000.0,
            ttft_ms: r.time_to_first_token.map(|t| t * 1000.0),
            input_tokens: r.input_tokens as i64,
            output_tokens: r.output_tokens as i64,
            cost: r.cost,
            session: r.session,
            error_class: r.error_class,
        }
    }
}

/// The rows waiting to be written.
#[derive(Debug, Default)]
struct Pending {
    rows: VecDeque<LogRow>,
    /// How many rows at the front were put back after a failed write (their write may have
    /// landed): they are written again with [`Attempt::Retry`].
    retried: usize,
}

/// Requests finished but not yet written.
#[derive(Debug)]
pub struct RequestLogBuffer {
    pending: Mutex<Pending>,
    /// Rows held at most.
    cap: usize,
    dropped: AtomicU64,
    /// One writer at a time.
    writer: tokio::sync::Mutex<()>,
}

impl Default for RequestLogBuffer {
    fn default() -> Self {
        Self::bounded(MAX_BUFFERED)
    }
}

impl RecordSink for RequestLogBuffer {
    fn record(&self, rec: RequestRecord) {
        self.push(LogRow::from_record(rec));
    }
}

impl RequestLogBuffer {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An empty buffer holding at most `cap` rows.
    pub fn bounded(cap: usize) -> Self {
        Self {
            pending: Mutex::default(),
            cap: cap.max(1),
            dropped: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Buffers one row, dropping the oldest beyond its bound ([`MAX_BUFFERED`]).
    pub fn push(&self, row: LogRow) {
        let mut p = self.pending();
        if p.rows.len() >= self.cap {
            p.rows.pop_front();
            p.retried = p.retried.saturating_sub(1);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        p.rows.push_back(row);
    }

    /// Rows buffered.
    pub fn len(&self) -> usize {
        self.pending().rows.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows dropped since start because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes the rows buffered when it starts, batch by batch, oldest first; rows that
    /// arrive meanwhile wait for the next flush (why: `take_batch`). A batch is taken
    /// out of the buffer while it is written and put back in front on an error, for the next
    /// try (rows dropped meanwhile for room were newer ones: the buffer's bound still holds);
    /// a batch holding rows put back is written with [`Attempt::Retry`].
    pub async fn flush(&self, store: &Store) -> Result<usize, sqlx::Error> {
        let _one = self.writer.lock().await;
        let mut total = 0;
        let mut left = self.len();
        loop {
            let Some((batch, how)) = self.take_batch(&mut left) else {
                return Ok(total);
            };
            if let Err(e) = store.write_requests(&batch, how).await {
                let mut p = self.pending();
                let room = self.cap.saturating_sub(p.rows.len());
                let keep = batch.len().min(room);
                let lost = batch.len() - keep;
                // Over the bound, the batch's oldest rows are the ones that go.
                for row in batch.into_iter().skip(lost).rev() {
                    p.rows.push_front(row);
                }
                p.retried += keep;
                self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                return Err(e);
            }
            total += batch.len();
        }
    }

    /// The next batch of a flush that has `left` rows still to write (counted when it
    /// started): at most [`BATCH`] rows from the front, and never more than `left`. Without
    /// that bound a flush chases the rows arriving while it writes, in ever smaller
    /// transactions that each rewrite the same last pages: at 3,400 requests/s that was a
    /// commit every 2 ms of about ten rows, 0.7 WAL pages written per row instead of 0.12,
    /// and the database thread and the key store's runtime woken for each.
    fn take_batch(&self, left: &mut usize) -> Option<(Vec<LogRow>, Attempt)> {
        let mut p = self.pending();
        let n = p.rows.len().min(BATCH).min(*left);
        if n == 0 {
            return None;
        }
        *left -= n;
        let how = if p.retried > 0 {
            Attempt::Retry
        } else {
            Attempt::First
        };
        p.retried = p.retried.saturating_sub(n);
        Some((p.rows.drain(..n).collect(), how))
    }
}

/// One hour of one key's calls to one model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rollup {
    /// The hour, Unix ms at its start.
    pub hour: i64,
    /// The key's token; empty for the master key.
    pub key_hash: String,
    /// The model name.
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Requests answered with status >= 400.
    pub errors: i64,
    /// USD.
    pub spend: f64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
}

/// Rows per INSERT statement (15 parameters each: far under SQLite's and PostgreSQL's
/// limits).
pub const ROWS_PER_INSERT: usize = 25;

/// How a batch of rows is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Its first write: the rows are new, a plain INSERT (a row already there fails it).
    First,
    /// Again after an error: rows already there are skipped, and only the rows inserted
    /// count in the rollups (`ON CONFLICT DO NOTHING RETURNING`).
    Retry,
}

/// The INSERT of `n` rows. For [`Attempt::Retry`] it skips rows already there and returns the
/// (time, id) of each row it inserted. Placeholders as [`super::store::values_rows`] writes
/// them (anonymous on SQLite: `$1..$375` once cost a quarter of the writer's time).
fn insert_sql(n: usize, sqlite: bool, how: Attempt) -> String {
    let mut sql = format!("INSERT INTO request_log ({ROW_COLUMNS}) VALUES ");
    super::store::values_rows(&mut sql, n, 15, sqlite);
    if how == Attempt::Retry {
        sql.push_str(" ON CONFLICT (time_ms, id) DO NOTHING RETURNING time_ms, id");
    }
    sql
}

pub(super) const ROW_COLUMNS: &str = "id, time_ms, key_hash, key_alias, model, door, deployment, status, latency_ms, \
    ttft_ms, input_tokens, output_tokens, cost, session, error_class";

impl Store {
    /// Writes a batch of request rows and adds the rows inserted to their hourly rollups, in
    /// one transaction.
    pub async fn write_requests(&self, rows: &[LogRow], how: Attempt) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        bounded(WRITE_TIMEOUT, async {
            // Rows go in [`ROWS_PER_INSERT`] at a time: one statement per row cost as much
            // in the driver as in the database (a benchmark row in docs/benchmarks.md). Full
            // chunks reuse one statement; on a retry `RETURNING` names the rows inserted.
            static WHOLE: [[std::sync::OnceLock<String>; 2]; 2] = [
                [std::sync::OnceLock::new(), std::sync::OnceLock::new()],
                [std::sync::OnceLock::new(), std::sync::OnceLock::new()],
            ];
            let mut tx = self.pool.begin().await?;
            let mut sums: BTreeMap<(i64, &str, &str), Rollup> = BTreeMap::new();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let sql = super::store::chunk_statement(
                    chunk.len(),
                    ROWS_PER_INSERT,
                    &WHOLE[usize::from(how == Attempt::Retry)][usize::from(self.sqlite)],
                    |n| insert_sql(n, self.sqlite, how),
                );
                let mut q = sqlx::query(&sql);
                for r in chunk {
                    q = q
                        .bind(&r.id)
                        .bind(r.time_ms)
                        .bind(&r.key_hash)
                        .bind(&r.key_alias)
                        .bind(&r.model)
                        .bind(r.door.as_ref())
                        .bind(&r.deployment)
                        .bind(r.status)
                        .bind(r.latency_ms)
                        .bind(r.ttft_ms)
                        .bind(r.input_tokens)
                        .bind(r.output_tokens)
                        .bind(r.cost)
                        .bind(&r.session)
                        .bind(&r.error_class);
                }
                // On a first write every row is inserted (or the statement fails).
                let inserted: Option<HashSet<(i64, String)>> = match how {
                    Attempt::First => {
                        q.execute(&mut *tx).await?;
                        None
                    }
                    Attempt::Retry => {
                        let inserted: HashSet<(i64, String)> = q
                            .fetch_all(&mut *tx)
                            .await?
                            .iter()
                            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                            .collect::<Result<_, sqlx::Error>>()?;
                        (inserted.len() < chunk.len()).then_some(inserted)
                    }
                };
                for r in chunk {
                    if let Some(inserted) = &inserted
                        && !inserted.contains(&(r.time_ms, r.id.clone()))
                    {
                        continue;
                    }
                    let hour = r.time_ms - r.time_ms.rem_euclid(HOUR_MS);
                    let s = sums
                        .entry((hour, r.key_hash.as_str(), r.model.as_str()))
                        .or_insert_with(|| Rollup {
                            hour,
                            key_hash: r.key_hash.clone(),
                            model: r.model.clone(),
                            ..Rollup::default()
                        });
                    s.requests += 1;
                    s.errors += i64::from(r.status >= 400);
                    s.spend += r.cost;
                    s.input_tokens += r.input_tokens;
                    s.output_tokens += r.output_tokens;
                }
            }
            for s in sums.values() {
                sqlx::query(
                    "INSERT INTO request_rollup (hour, key_hash, model, requests, errors, spend, input_tokens, output_tokens) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (hour, key_hash, model) DO UPDATE SET \
                     requests = request_rollup.requests + excluded.requests, errors = request_rollup.errors + excluded.errors, \
                     spend = request_rollup.spend + excluded.spend, input_tokens = request_rollup.input_tokens + excluded.input_tokens, \
                     output_tokens = request_rollup.output_tokens + excluded.output_tokens",
                )
                .bind(s.hour)
                .bind(&s.key_hash)
                .bind(&s.model)
                .bind(s.requests)
                .bind(s.errors)
                .bind(s.spend)
                .bind(s.input_tokens)
                .bind(s.output_tokens)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
        .await
    }

    /// Deletes logged requests and rollups older than `before_ms`; returns the rows deleted.
    pub async fn prune_requests(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        bounded(WRITE_TIMEOUT, async {
            let r = sqlx::query("DELETE FROM request_log WHERE time_ms < $1")
                .bind(before_ms)
                .execute(&self.pool)
                .await?;
            sqlx::query("DELETE FROM request_rollup WHERE hour < $1")
                .bind(before_ms - before_ms.rem_euclid(HOUR_MS))
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected())
        })
        .await
    }
}

#[cfg(test)]
#[path = "request_log_tests.rs"]
mod tests;
