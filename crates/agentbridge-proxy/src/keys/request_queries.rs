//! Reading the request log: the admin UI's request list (filtered, paged by keyset on
//! `(time_ms, id)`) and the hourly rollups summed for its overview.

use super::request_log::{HOUR_MS, LogRow, ROW_COLUMNS, Rollup};
use super::store::{DB_TIMEOUT, Store, bounded};
use sqlx::Row;
use sqlx::any::AnyRow;

/// How [`Store::rollups`] sums the hourly rollups.
#[derive(Debug, Clone, PartialEq)]
pub enum Grouping {
    /// Not at all: every hour, key and model.
    All,
    /// Per bucket of this many ms (a multiple of an hour).
    Bucket(i64),
    /// Per key.
    Key,
    /// Per model.
    Model,
    /// Per key and bucket of this many ms, for these keys only.
    KeyBucket(i64, Vec<String>),
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

fn log_row(r: &AnyRow) -> Result<LogRow, sqlx::Error> {
    Ok(LogRow {
        id: r.try_get("id")?,
        time_ms: r.try_get("time_ms")?,
        key_hash: r.try_get("key_hash")?,
        key_alias: r.try_get("key_alias")?,
        model: r.try_get("model")?,
        door: std::borrow::Cow::Owned(r.try_get("door")?),
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
            if code >= 400 {
                // Implied, but the planner only uses the errors-only index when it is said.
                conds.push("status >= 400".into());
            }
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

    /// The hourly rollups from `since_ms` on, summed in the database over `by` (the
    /// columns not grouped on come back as 0 or empty), so the overview reads a few dozen
    /// rows whatever the traffic.
    pub async fn rollups(&self, since_ms: i64, by: Grouping) -> Result<Vec<Rollup>, sqlx::Error> {
        let bucket = |ms: i64| format!("hour - (hour % {})", ms.max(1));
        let (hour, key, model, filter, group) = match &by {
            Grouping::All => (
                "hour".to_string(),
                "key_hash",
                "model",
                String::new(),
                "hour, key_hash, model".to_string(),
            ),
            Grouping::Bucket(ms) => (bucket(*ms), "''", "''", String::new(), "1".to_string()),
            Grouping::Key => (
                "0".to_string(),
                "key_hash",
                "''",
                String::new(),
                "key_hash".to_string(),
            ),
            Grouping::Model => (
                "0".to_string(),
                "''",
                "model",
                String::new(),
                "model".to_string(),
            ),
            Grouping::KeyBucket(ms, keys) => {
                let list: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 2)).collect();
                let filter = if keys.is_empty() {
                    " AND 1 = 0".to_string()
                } else {
                    format!(" AND key_hash IN ({})", list.join(", "))
                };
                (
                    bucket(*ms),
                    "key_hash",
                    "''",
                    filter,
                    "1, key_hash".to_string(),
                )
            }
        };
        let sql = format!(
            "SELECT {hour} AS hour, {key} AS key_hash, {model} AS model, CAST(SUM(requests) AS BIGINT) AS requests, \
             CAST(SUM(errors) AS BIGINT) AS errors, SUM(spend) AS spend, CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, \
             CAST(SUM(output_tokens) AS BIGINT) AS output_tokens FROM request_rollup WHERE hour >= $1{filter} \
             GROUP BY {group} ORDER BY 1"
        );
        bounded(DB_TIMEOUT, async {
            let mut q = sqlx::query(&sql).bind(since_ms - since_ms.rem_euclid(HOUR_MS));
            if let Grouping::KeyBucket(_, keys) = &by {
                for k in keys {
                    q = q.bind(k.as_str());
                }
            }
            let rows = q.fetch_all(&self.pool).await?;
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
}
