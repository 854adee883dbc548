//! The request log: one row per finished request (what the admin UI lists and charts), never
//! a prompt or an answer.
//!
//! Like spend, it is written off the request path: a finished request's record goes into a
//! bounded buffer ([`RequestLogBuffer`]) and the key service's background task writes it in
//! batches of [`BATCH`] ([`Store::write_requests`]), adding each row to its hour's rollup
//! (`request_rollup`, per hour, key and model) in the same transaction. The write is
//! idempotent (keyed by request id), and only rows actually inserted count in the rollups.
//! Unlike spend, nothing is refused when the buffer is full: the oldest rows are dropped and
//! counted (the log is for looking at, not for billing). Rows older than the retention
//! (`agentbridge.request_log_retention_days`) are pruned by the same task. Reading it:
//! [`super::request_queries`].

use super::store::{Store, WRITE_TIMEOUT, bounded};
use crate::observe::{RecordSink, RequestRecord};
use std::collections::{BTreeMap, VecDeque};
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
    pub door: String,
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
    /// The row for a finished request.
    pub fn from_record(r: &RequestRecord) -> Self {
        Self {
            id: if r.request_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                r.request_id.clone()
            },
            time_ms: (r.time * 1000.0) as i64,
            key_hash: r.hashed_key.clone().unwrap_or_default(),
            key_alias: r.key_alias.clone(),
            model: r.requested_model.clone().unwrap_or_default(),
            door: r.door.to_string(),
            deployment: r.deployment_id.clone(),
            status: i64::from(r.status),
            latency_ms: r.latency * 1000.0,
            ttft_ms: r.time_to_first_token.map(|t| t * 1000.0),
            input_tokens: r.input_tokens as i64,
            output_tokens: r.output_tokens as i64,
            cost: r.cost,
            session: r.session.clone(),
            error_class: r.error_class.clone(),
        }
    }
}

/// Requests finished but not yet written.
#[derive(Debug)]
pub struct RequestLogBuffer {
    pending: Mutex<VecDeque<LogRow>>,
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
    fn record(&self, rec: &RequestRecord) {
        self.push(LogRow::from_record(rec));
    }
}

impl RequestLogBuffer {
    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<LogRow>> {
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
        if p.len() >= self.cap {
            p.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        p.push_back(row);
    }

    /// Rows buffered.
    pub fn len(&self) -> usize {
        self.pending().len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows dropped since start because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes the buffer, batch by batch, oldest first. A batch leaves the buffer once
    /// committed; on an error the rest stays for the next try.
    pub async fn flush(&self, store: &Store) -> Result<usize, sqlx::Error> {
        let _one = self.writer.lock().await;
        let mut total = 0;
        loop {
            let batch: Vec<LogRow> = self.pending().iter().take(BATCH).cloned().collect();
            if batch.is_empty() {
                return Ok(total);
            }
            store.write_requests(&batch).await?;
            // Rows dropped while writing were the oldest, possibly some of this batch: what
            // is left of the batch is still at the front.
            let ids: std::collections::HashSet<&str> =
                batch.iter().map(|r| r.id.as_str()).collect();
            let mut p = self.pending();
            while p.front().is_some_and(|r| ids.contains(r.id.as_str())) {
                p.pop_front();
            }
            total += batch.len();
        }
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

pub(super) const ROW_COLUMNS: &str = "id, time_ms, key_hash, key_alias, model, door, deployment, status, latency_ms, \
    ttft_ms, input_tokens, output_tokens, cost, session, error_class";

impl Store {
    /// Writes a batch of request rows and adds the rows actually inserted to their hourly
    /// rollups, in one transaction.
    pub async fn write_requests(&self, rows: &[LogRow]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        bounded(WRITE_TIMEOUT, async {
            // One prepared statement, run once per row in one transaction: the driver keeps
            // it prepared across batches (a multi-row VALUES list would be a new statement
            // of up to 7,500 parameters for every batch size).
            let sql = format!(
                "INSERT INTO request_log ({ROW_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (id) DO NOTHING"
            );
            let mut tx = self.pool.begin().await?;
            let mut sums: BTreeMap<(i64, &str, &str), Rollup> = BTreeMap::new();
            for r in rows {
                let inserted = sqlx::query(&sql)
                    .bind(&r.id)
                    .bind(r.time_ms)
                    .bind(&r.key_hash)
                    .bind(&r.key_alias)
                    .bind(&r.model)
                    .bind(&r.door)
                    .bind(&r.deployment)
                    .bind(r.status)
                    .bind(r.latency_ms)
                    .bind(r.ttft_ms)
                    .bind(r.input_tokens)
                    .bind(r.output_tokens)
                    .bind(r.cost)
                    .bind(&r.session)
                    .bind(&r.error_class)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
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
