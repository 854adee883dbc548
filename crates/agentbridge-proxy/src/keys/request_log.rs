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
//! (`agentbridge.request_log_retention_days`) are pruned by the same task.

use super::store::{DB_TIMEOUT, Store, WRITE_TIMEOUT, bounded};
use crate::observe::{RecordSink, RequestRecord};
use sqlx::Row;
use sqlx::any::AnyRow;
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

/// Filters of the request list; empty strings match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// A key's token (`-` for the master key).
    pub key_hash: String,
    /// A model name.
    pub model: String,
    /// `ok` (< 400), `error` (>= 400) or a status code.
    pub status: String,
}

const ROW_COLUMNS: &str = "id, time_ms, key_hash, key_alias, model, door, deployment, status, latency_ms, \
    ttft_ms, input_tokens, output_tokens, cost, session, error_class";

fn log_row(r: &AnyRow) -> Result<LogRow, sqlx::Error> {
    Ok(LogRow {
        id: r.try_get("id")?,
        time_ms: r.try_get("time_ms")?,
        key_hash: r.try_get("key_hash")?,
        key_alias: r.try_get("key_alias")?,
        model: r.try_get("model")?,
        door: r.try_get("door")?,
        deployment: r.try_get("deployment")?,
        status: r.try_get("status")?,
        latency_ms: r.try_get("latency_ms")?,
        ttft_ms: r.try_get("ttft_ms")?,
        input_tokens: r.try_get("input_tokens")?,
        output_tokens: r.try_get("output_tokens")?,
        cost: r.try_get("cost")?,
        session: r.try_get("session")?,
        error_class: r.try_get("error_class")?,
    })
}

/// The WHERE clause and its text parameters for a filter and a keyset cursor (placeholders
/// numbered from `$1`; only the conditions in use, so each can use its index).
pub fn where_clause(f: &Filter, before: Option<(i64, &str)>) -> (String, Vec<Param>) {
    let mut conds = Vec::new();
    let mut params = Vec::new();
    let next = |p: Param, params: &mut Vec<Param>| {
        params.push(p);
        format!("${}", params.len())
    };
    if !f.key_hash.is_empty() {
        let k = if f.key_hash == "-" { "" } else { &f.key_hash };
        conds.push(format!(
            "key_hash = {}",
            next(Param::Text(k.into()), &mut params)
        ));
    }
    if !f.model.is_empty() {
        conds.push(format!(
            "model = {}",
            next(Param::Text(f.model.clone()), &mut params)
        ));
    }
    match f.status.as_str() {
        "" => {}
        "ok" => conds.push("status < 400".into()),
        "error" => conds.push("status >= 400".into()),
        s => {
            let code = s.parse::<i64>().unwrap_or(-1);
            conds.push(format!("status = {}", next(Param::Int(code), &mut params)));
        }
    }
    if let Some((t, id)) = before {
        let a = next(Param::Int(t), &mut params);
        let b = next(Param::Text(id.into()), &mut params);
        conds.push(format!("(time_ms < {a} OR (time_ms = {a} AND id < {b}))"));
    }
    let sql = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (sql, params)
}

/// A bound parameter of [`where_clause`].
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
}

impl Store {
    /// Writes a batch of request rows and adds the rows actually inserted to their hourly
    /// rollups, in one transaction.
    pub async fn write_requests(&self, rows: &[LogRow]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        bounded(WRITE_TIMEOUT, async {
            const N: usize = 15;
            let values: Vec<String> = (0..rows.len())
                .map(|i| {
                    let p: Vec<String> = (1..=N).map(|c| format!("${}", i * N + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO request_log ({ROW_COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING \
                 RETURNING time_ms, key_hash, model, status, cost, input_tokens, output_tokens",
                values.join(", ")
            );
            let mut insert = sqlx::query(&sql);
            for r in rows {
                insert = insert
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
                    .bind(&r.error_class);
            }
            let mut tx = self.pool.begin().await?;
            let mut sums: BTreeMap<(i64, String, String), Rollup> = BTreeMap::new();
            for row in insert.fetch_all(&mut *tx).await? {
                let t: i64 = row.try_get("time_ms")?;
                let hour = t - t.rem_euclid(HOUR_MS);
                let (key, model): (String, String) =
                    (row.try_get("key_hash")?, row.try_get("model")?);
                let s = sums.entry((hour, key.clone(), model.clone())).or_insert(Rollup {
                    hour,
                    key_hash: key,
                    model,
                    ..Rollup::default()
                });
                s.requests += 1;
                let status: i64 = row.try_get("status")?;
                s.errors += i64::from(status >= 400);
                s.spend += row.try_get::<f64, _>("cost")?;
                s.input_tokens += row.try_get::<i64, _>("input_tokens")?;
                s.output_tokens += row.try_get::<i64, _>("output_tokens")?;
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

    /// Logged requests matching `f`, newest first, strictly older than the cursor `before`
    /// (`(time_ms, id)` of the last row of the previous page).
    pub async fn requests(
        &self,
        f: &Filter,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<LogRow>, sqlx::Error> {
        let (clause, params) = where_clause(f, before);
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM request_log {clause} ORDER BY time_ms DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        );
        bounded(DB_TIMEOUT, async {
            let mut q = sqlx::query(&sql);
            for p in &params {
                q = match p {
                    Param::Text(s) => q.bind(s.as_str()),
                    Param::Int(i) => q.bind(*i),
                };
            }
            let rows = q.fetch_all(&self.pool).await?;
            rows.iter().map(log_row).collect()
        })
        .await
    }

    /// The hourly rollups from `since_ms` on.
    pub async fn rollups(&self, since_ms: i64) -> Result<Vec<Rollup>, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let rows = sqlx::query(
                "SELECT hour, key_hash, model, requests, errors, spend, input_tokens, output_tokens \
                 FROM request_rollup WHERE hour >= $1 ORDER BY hour",
            )
            .bind(since_ms - since_ms.rem_euclid(HOUR_MS))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Rollup {
                        hour: r.try_get("hour")?,
                        key_hash: r.try_get("key_hash")?,
                        model: r.try_get("model")?,
                        requests: r.try_get("requests")?,
                        errors: r.try_get("errors")?,
                        spend: r.try_get("spend")?,
                        input_tokens: r.try_get("input_tokens")?,
                        output_tokens: r.try_get("output_tokens")?,
                    })
                })
                .collect()
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
mod tests {
    use super::*;

    async fn store() -> (Store, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("agentbridge-reqlog-{}.db", uuid::Uuid::new_v4()));
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        (store, path)
    }

    fn row(i: i64, key: &str, model: &str, status: i64) -> LogRow {
        LogRow {
            id: format!("req-{i:04}"),
            time_ms: 10 * HOUR_MS + i * 60_000,
            key_hash: key.into(),
            key_alias: None,
            model: model.into(),
            door: "chat".into(),
            deployment: None,
            status,
            latency_ms: 12.0,
            ttft_ms: None,
            input_tokens: 3,
            output_tokens: 4,
            cost: 0.5,
            session: Some("s".into()),
            error_class: None,
        }
    }

    #[test]
    fn the_where_clause_has_only_the_filters_in_use() {
        assert_eq!(
            where_clause(&Filter::default(), None),
            (String::new(), vec![])
        );
        let f = Filter {
            key_hash: "-".into(),
            model: "m".into(),
            status: "error".into(),
        };
        let (sql, params) = where_clause(&f, Some((5, "x")));
        assert_eq!(
            sql,
            "WHERE key_hash = $1 AND model = $2 AND status >= 400 AND (time_ms < $3 OR (time_ms = $3 AND id < $4))"
        );
        assert_eq!(
            params,
            vec![
                Param::Text(String::new()),
                Param::Text("m".into()),
                Param::Int(5),
                Param::Text("x".into())
            ]
        );
        let (sql, params) = where_clause(
            &Filter {
                status: "429".into(),
                ..Filter::default()
            },
            None,
        );
        assert_eq!(
            (sql.as_str(), params),
            ("WHERE status = $1", vec![Param::Int(429)])
        );
    }

    #[tokio::test]
    async fn rows_written_twice_count_once_in_the_rollups() {
        let (s, path) = store().await;
        let batch: Vec<LogRow> = (0..70)
            .map(|i| row(i, "k", "m", if i % 10 == 0 { 500 } else { 200 }))
            .collect();
        s.write_requests(&batch).await.unwrap();
        s.write_requests(&batch[60..]).await.unwrap();
        let r = s.rollups(0).await.unwrap();
        // 70 minutes from 10:00: 60 in hour 10, 10 in hour 11.
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].hour, r[0].requests, r[0].errors),
            (10 * HOUR_MS, 60, 6)
        );
        assert_eq!(
            (r[1].hour, r[1].requests, r[1].errors),
            (11 * HOUR_MS, 10, 1)
        );
        assert_eq!(r[0].spend + r[1].spend, 35.0);
        assert_eq!(r[0].input_tokens + r[1].output_tokens, 180 + 40);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn pages_follow_each_other_without_gaps_or_repeats_under_filters() {
        let (s, path) = store().await;
        let mut rows = Vec::new();
        for i in 0..45 {
            let key = if i % 3 == 0 { "a" } else { "b" };
            let model = if i % 2 == 0 { "m1" } else { "m2" };
            rows.push(row(i, key, model, if i % 5 == 0 { 429 } else { 200 }));
        }
        // Two rows in the same millisecond: the id breaks the tie.
        let mut twin = row(44, "a", "m1", 200);
        twin.id = "req-0044b".into();
        rows.push(twin);
        s.write_requests(&rows).await.unwrap();
        for (f, want) in [
            (Filter::default(), 46),
            (
                Filter {
                    key_hash: "a".into(),
                    ..Filter::default()
                },
                16,
            ),
            (
                Filter {
                    model: "m2".into(),
                    ..Filter::default()
                },
                22,
            ),
            (
                Filter {
                    status: "error".into(),
                    ..Filter::default()
                },
                9,
            ),
            (
                Filter {
                    status: "429".into(),
                    key_hash: "b".into(),
                    ..Filter::default()
                },
                6,
            ),
        ] {
            let mut seen: Vec<String> = Vec::new();
            let mut before: Option<(i64, String)> = None;
            loop {
                let page = s
                    .requests(&f, before.as_ref().map(|(t, id)| (*t, id.as_str())), 7)
                    .await
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                assert!(
                    page.windows(2)
                        .all(|w| (w[0].time_ms, &w[0].id) > (w[1].time_ms, &w[1].id))
                );
                let last = page.last().unwrap();
                before = Some((last.time_ms, last.id.clone()));
                seen.extend(page.iter().map(|r| r.id.clone()));
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!((seen.len(), unique.len()), (want, want), "{f:?}");
        }
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn pruning_deletes_rows_and_rollups_past_the_retention() {
        let (s, path) = store().await;
        let rows: Vec<LogRow> = (0..120).map(|i| row(i, "k", "m", 200)).collect();
        s.write_requests(&rows).await.unwrap();
        assert_eq!(s.prune_requests(11 * HOUR_MS).await.unwrap(), 60);
        assert_eq!(
            s.requests(&Filter::default(), None, 1000)
                .await
                .unwrap()
                .len(),
            60
        );
        let r = s.rollups(0).await.unwrap();
        assert_eq!(
            r.iter().map(|r| r.hour).collect::<Vec<_>>(),
            vec![11 * HOUR_MS]
        );
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn the_buffer_drops_its_oldest_rows_when_full_and_writes_the_rest() {
        let (s, path) = store().await;
        let b = RequestLogBuffer::bounded(BATCH + 10);
        for i in 0..(BATCH as i64 + 13) {
            b.push(row(i, "k", "m", 200));
        }
        assert_eq!((b.len(), b.dropped()), (BATCH + 10, 3));
        let n = b.flush(&s).await.unwrap();
        assert_eq!(n, BATCH + 10);
        assert!(b.is_empty());
        let all = s.requests(&Filter::default(), None, 1000).await.unwrap();
        assert_eq!(all.len(), BATCH + 10);
        assert_eq!(all[0].id, format!("req-{:04}", BATCH + 12));
        assert_eq!(
            all.last().unwrap().id,
            "req-0003",
            "the 3 oldest were dropped"
        );
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn ui_sessions_expire_and_end() {
        use crate::keys::ui_sessions::UiSession;
        let (s, path) = store().await;
        let live = UiSession {
            csrf: "c1".into(),
            expires_at: 200,
        };
        s.create_session("h1", &live).await.unwrap();
        s.create_session(
            "h2",
            &UiSession {
                csrf: "c2".into(),
                expires_at: 50,
            },
        )
        .await
        .unwrap();
        assert_eq!(s.session("h1", 100).await.unwrap(), Some(live));
        assert_eq!(s.session("h2", 100).await.unwrap(), None, "expired");
        assert_eq!(s.session("nope", 100).await.unwrap(), None);
        assert_eq!(s.prune_sessions(100).await.unwrap(), 1);
        s.delete_session("h1").await.unwrap();
        assert_eq!(s.session("h1", 100).await.unwrap(), None, "signed out");
        let _ = std::fs::remove_file(path);
    }
}
