//! The database: SQLite by default, PostgreSQL when configured, through sqlx's `Any` driver
//! with one schema (`migrations/`) and one set of queries (`$n` placeholders in order, which
//! both accept; multi-row INSERTs write theirs with `values_rows`). Every call is bounded ([`DB_TIMEOUT`], or [`WRITE_TIMEOUT`] for a batch of
//! spend), so an unreachable or locked database fails a call instead of stalling it.

use super::record::KeyRecord;
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The longest a database call on the request path (a key lookup, an admin call) may take,
/// waiting for a connection included.
pub const DB_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest one batch of spend ([`Store::record`]) may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows of spend logs per INSERT statement (a batch of [`super::spend::BATCH`] is written in
/// several, in one transaction).
pub const SPEND_ROWS_PER_INSERT: usize = 25;

/// Appends `VALUES`' rows: `rows` parenthesised lists of `columns` placeholders. SQLite gets
/// anonymous `?`s: for each numbered parameter the driver asks SQLite its name, a lookup that
/// walks the statement's list of names, so a statement's cost grows with the square of its
/// parameters (`$1..$3500` for 500 spend logs cost ~86k instructions a row, more than the
/// request itself: docs/benchmarks.md). PostgreSQL only knows `$N`.
pub(super) fn values_rows(sql: &mut String, rows: usize, columns: usize, sqlite: bool) {
    use std::fmt::Write;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            let sep = if c == 1 { "" } else { ", " };
            if sqlite {
                let _ = write!(sql, "{sep}?");
            } else {
                let _ = write!(sql, "{sep}${}", r * columns + c);
            }
        }
        sql.push(')');
    }
}

/// The statement for a chunk of `n` rows of a multi-row INSERT written `rows_per` rows at a
/// time: a whole chunk's is made once per process (`whole`), a last, shorter chunk's each time.
pub(super) fn chunk_statement(
    n: usize,
    rows_per: usize,
    whole: &'static std::sync::OnceLock<String>,
    make: impl Fn(usize) -> String,
) -> std::borrow::Cow<'static, str> {
    if n == rows_per {
        whole.get_or_init(|| make(rows_per)).as_str().into()
    } else {
        make(n).into()
    }
}

/// The INSERT of `rows` spend logs, skipping those already written and returning the key
/// and spend of each one inserted.
fn spend_insert_sql(rows: usize, sqlite: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO spend_logs (request_id, key_hash, model, spend, prompt_tokens, completion_tokens, created_at) VALUES ",
    );
    values_rows(&mut sql, rows, 7, sqlite);
    sql.push_str(" ON CONFLICT (request_id) DO NOTHING RETURNING key_hash, spend, created_at");
    sql
}

/// Adds `spend`, charged at `at`, to the key's, unless the key's budget period began after
/// `at`; whether it did.
async fn add_spend(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &str,
    at: i64,
    spend: f64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE virtual_keys SET spend = spend + $1 WHERE key_hash = $2 \
         AND (budget_period_start IS NULL OR budget_period_start <= $3)",
    )
    .bind(spend)
    .bind(key)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// `f`, failed with a timeout error if it takes longer than `limit`.
pub(super) async fn bounded<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from the database within {limit:?}"),
        )))
    })
}

/// One call's spend.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpendLog {
    /// The gateway's request id.
    pub request_id: String,
    /// The key's token (hash).
    pub api_key: String,
    /// The model name the client used.
    pub model: String,
    /// USD.
    pub spend: f64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// The key store.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) pool: AnyPool,
    /// Whether the database is SQLite (else PostgreSQL): the few statements built at run
    /// time write their placeholders in each one's cheapest form.
    pub(super) sqlite: bool,
}

const COLUMNS: &str = "key_hash, key_alias, key_prefix, models, max_budget, budget_duration, budget_reset_at, \
    budget_period_start, rpm_limit, tpm_limit, expires_at, metadata, spend, created_at, deleted_at";

/// The columns a key's owner can change, in the order [`bind_settings`] binds them.
const SETTINGS: &str = "key_alias, models, max_budget, budget_duration, budget_reset_at, rpm_limit, tpm_limit, \
    expires_at, metadata";

fn bind_settings<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    k: &'q KeyRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&k.key_alias)
        .bind(serde_json::to_string(&k.models).unwrap_or_default())
        .bind(k.max_budget)
        .bind(&k.budget_duration)
        .bind(k.budget_reset_at)
        .bind(k.rpm_limit)
        .bind(k.tpm_limit)
        .bind(k.expires)
        .bind(k.metadata.to_string())
}

fn record(row: &AnyRow) -> Result<KeyRecord, sqlx::Error> {
    let models: String = row.try_get("models")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(KeyRecord {
        token: row.try_get("key_hash")?,
        key_alias: row.try_get("key_alias")?,
        key_name: row.try_get("key_prefix")?,
        models: serde_json::from_str(&models).unwrap_or_default(),
        max_budget: row.try_get("max_budget")?,
        budget_duration: row.try_get("budget_duration")?,
        budget_reset_at: row.try_get("budget_reset_at")?,
        budget_period_start: row.try_get("budget_period_start")?,
        rpm_limit: row.try_get("rpm_limit")?,
        tpm_limit: row.try_get("tpm_limit")?,
        expires: row.try_get("expires_at")?,
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
        spend: row.try_get("spend")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

impl Store {
    /// Connects and applies the migrations. `url` is `sqlite://PATH` or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let sep = if url.contains('?') { "&" } else { "?" };
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            format!("{url}{sep}mode=rwc")
        } else if url.starts_with("postgres") && !url.contains("statement-cache-capacity") {
            // Through the Any driver a NULL parameter carries no type; a statement prepared
            // (and cached) with a NULL then rejects a value of the real type in that place.
            // Statements are prepared per execution instead: off the hot path, cheap.
            format!("{url}{sep}statement-cache-capacity=0")
        } else {
            url.to_string()
        };
        let sqlite = url.starts_with("sqlite:");
        let max = if sqlite { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Write-ahead log, synced at checkpoints rather than at every
                        // commit: the request log commits a few times a second, and on this
                        // kind of VM each fsync of a rollback journal cost more CPU than the
                        // rows it made durable (docs/benchmarks.md). A commit survives the
                        // gateway crashing; only a power loss or an OS crash can undo the
                        // last ones (SQLite's documented trade for `synchronous = NORMAL`).
                        use sqlx::Executor;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .acquire_timeout(DB_TIMEOUT)
            .connect(&url)
            .await?;
        sqlx::migrate::Migrator::new(super::migrations::Embedded)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?
            .run(&pool)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        Ok(Self { pool, sqlite })
    }

    /// Inserts a new key.
    pub async fn insert(&self, k: &KeyRecord) -> Result<(), sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let sql = format!(
                "INSERT INTO virtual_keys ({SETTINGS}, key_hash, key_prefix, spend, created_at, deleted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            );
            bind_settings(sqlx::query(&sql), k)
                .bind(&k.token)
                .bind(&k.key_name)
                .bind(k.spend)
                .bind(k.created_at)
                .bind(k.deleted_at)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// The key with this token, deleted or not.
    pub async fn get(&self, token: &str) -> Result<Option<KeyRecord>, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM virtual_keys WHERE key_hash = $1"
            ))
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(record).transpose()
        })
        .await
    }

    /// Keys that are not deleted, newest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM virtual_keys WHERE deleted_at IS NULL ORDER BY created_at DESC"
            ))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(record).collect()
        })
        .await
    }

    /// Writes the key's settings (not its spend).
    pub async fn update(&self, k: &KeyRecord) -> Result<(), sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let assignments: Vec<String> = SETTINGS
                .split(", ")
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", i + 1))
                .collect();
            let sql = format!(
                "UPDATE virtual_keys SET {} WHERE key_hash = $10",
                assignments.join(", ")
            );
            bind_settings(sqlx::query(&sql), k)
                .bind(&k.token)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Marks a key deleted. Returns whether it existed and was live.
    pub async fn delete(&self, token: &str, at: i64) -> Result<bool, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let r = sqlx::query(
                "UPDATE virtual_keys SET deleted_at = $1 WHERE key_hash = $2 AND deleted_at IS NULL",
            )
            .bind(at)
            .bind(token)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() > 0)
        })
        .await
    }

    /// Starts a new budget period at `at` if the current one is over (one instance wins):
    /// zero spend, the period's start and its end (`next_reset`).
    pub async fn reset_budget(
        &self,
        token: &str,
        old_reset: i64,
        at: i64,
        next_reset: i64,
    ) -> Result<bool, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let r = sqlx::query(
                "UPDATE virtual_keys SET spend = 0, budget_period_start = $1, budget_reset_at = $2 \
                 WHERE key_hash = $3 AND budget_reset_at = $4",
            )
            .bind(at)
            .bind(next_reset)
            .bind(token)
            .bind(old_reset)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() > 0)
        })
        .await
    }

    /// Writes a batch of spend logs and adds their spend to the keys, in one transaction: an
    /// INSERT per [`SPEND_ROWS_PER_INSERT`] logs, then an UPDATE per key, in the keys' order
    /// (two instances' batches then lock shared keys in the same order: no deadlock on
    /// PostgreSQL). Idempotent: a log whose request id is already stored is skipped, and so
    /// is its spend, so a batch retried after a commit whose answer was lost counts once.
    /// A log charged before its key's budget period began (the batch was still buffered at
    /// the reset) is stored, but its spend counted in the period that ended, not this one.
    /// Returns the spend added to each key.
    pub async fn record(&self, logs: &[SpendLog]) -> Result<HashMap<String, f64>, sqlx::Error> {
        let mut added = HashMap::new();
        if logs.is_empty() {
            return Ok(added);
        }
        bounded(WRITE_TIMEOUT, async {
            static WHOLE: [std::sync::OnceLock<String>; 2] =
                [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
            let mut tx = self.pool.begin().await?;
            // Only the logs actually inserted come back: their spend is added, once. Per key
            // and second charged, so that a sum is added or not as a whole.
            let mut per_key: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
            for chunk in logs.chunks(SPEND_ROWS_PER_INSERT) {
                let sql = chunk_statement(
                    chunk.len(),
                    SPEND_ROWS_PER_INSERT,
                    &WHOLE[usize::from(self.sqlite)],
                    |n| spend_insert_sql(n, self.sqlite),
                );
                let mut insert = sqlx::query(&sql);
                for l in chunk {
                    insert = insert
                        .bind(&l.request_id)
                        .bind(&l.api_key)
                        .bind(&l.model)
                        .bind(l.spend)
                        .bind(l.prompt_tokens)
                        .bind(l.completion_tokens)
                        .bind(l.created_at);
                }
                for row in insert.fetch_all(&mut *tx).await? {
                    let (key, at, spend): (String, i64, f64) = (
                        row.try_get("key_hash")?,
                        row.try_get("created_at")?,
                        row.try_get("spend")?,
                    );
                    *per_key.entry(key).or_default().entry(at).or_default() += spend;
                }
            }
            for (key, seconds) in per_key {
                // All at once when the key's period began by its first call here (nearly
                // always: one UPDATE a key), else second by second.
                let first = seconds.keys().next().copied().unwrap_or_default();
                let all = seconds.values().sum();
                if add_spend(&mut tx, &key, first, all).await? {
                    added.insert(key, all);
                    continue;
                }
                // (The first second is not added: the period began after it.)
                for (at, spend) in seconds.into_iter().skip(1) {
                    if add_spend(&mut tx, &key, at, spend).await? {
                        *added.entry(key.clone()).or_default() += spend;
                    }
                }
            }
            tx.commit().await?;
            Ok(added)
        })
        .await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// Spend logs, newest first, optionally for one key and/or model.
    pub async fn logs(
        &self,
        api_key: &str,
        model: &str,
        limit: i64,
    ) -> Result<Vec<SpendLog>, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let rows = sqlx::query(
                "SELECT request_id, key_hash, model, spend, prompt_tokens, completion_tokens, created_at FROM spend_logs \
                 WHERE ($1 = '' OR key_hash = $2) AND ($3 = '' OR model = $4) ORDER BY created_at DESC LIMIT $5",
            )
            .bind(api_key)
            .bind(api_key)
            .bind(model)
            .bind(model)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SpendLog {
                        request_id: r.try_get("request_id")?,
                        api_key: r.try_get("key_hash")?,
                        model: r.try_get("model")?,
                        spend: r.try_get("spend")?,
                        prompt_tokens: r.try_get("prompt_tokens")?,
                        completion_tokens: r.try_get("completion_tokens")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Total spend and calls grouped by `key_hash` or `model`.
    pub async fn totals(&self, by_model: bool) -> Result<Vec<(String, f64, i64)>, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let col = if by_model { "model" } else { "key_hash" };
            let rows = sqlx::query(&format!(
                "SELECT {col} AS name, SUM(spend) AS total, COUNT(*) AS calls FROM spend_logs GROUP BY {col} ORDER BY {col}"
            ))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("name")?, r.try_get("total")?, r.try_get("calls")?)))
                .collect()
        })
        .await
    }
}

/// Removes a test's SQLite database with its WAL and shared-memory files.
#[cfg(test)]
pub(crate) fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_inserts_number_postgresql_placeholders_and_leave_sqlites_anonymous() {
        let pg = spend_insert_sql(2, false);
        assert!(pg.contains("VALUES ($1, $2, "), "{pg}");
        assert!(pg.contains("$13, $14) ON CONFLICT"), "{pg}");
        let lite = spend_insert_sql(2, true);
        assert_eq!(lite.matches('?').count(), 14, "{lite}");
        assert!(!lite.contains('$'), "{lite}");
        assert!(
            lite.ends_with("RETURNING key_hash, spend, created_at"),
            "{lite}"
        );
    }

    fn log(id: usize, key: &str, spend: f64) -> SpendLog {
        SpendLog {
            request_id: format!("req-{id}"),
            api_key: key.into(),
            model: "m".into(),
            spend,
            prompt_tokens: 1,
            completion_tokens: 2,
            created_at: 0,
        }
    }

    /// A batch of several statements' worth of logs for several keys, retried with logs
    /// already written in every statement: each log counts once, for its own key.
    #[tokio::test]
    async fn a_batch_of_many_statements_retried_counts_each_log_once_for_its_key() {
        let (store, path) = crate::keys::spend::tests::store_with_keys(&["a", "b"]).await;
        let n = 2 * SPEND_ROWS_PER_INSERT + 7;
        let key_of = |i: usize| if i.is_multiple_of(3) { "a" } else { "b" };
        let first: Vec<SpendLog> = (0..n).step_by(2).map(|i| log(i, key_of(i), 0.25)).collect();
        store.record(&first).await.unwrap();
        let all: Vec<SpendLog> = (0..n).map(|i| log(i, key_of(i), 0.25)).collect();
        store.record(&all).await.unwrap();
        for token in ["a", "b"] {
            let expected = (0..n).filter(|&i| key_of(i) == token).count() as f64 * 0.25;
            assert_eq!(store.get(token).await.unwrap().unwrap().spend, expected);
        }
        assert_eq!(store.logs("", "", 1000).await.unwrap().len(), n);
        remove_db(&path);
    }
}
