//! The overview: requests, errors, spend and tokens per hour; requests and spend per model
//! and per key; the top keys by spend; the budget burn-down of keys with a budget. Read
//! from the hourly rollups, so it costs the same at a thousand or a million requests.

use super::key_label;
use crate::keys::record::{KeyRecord, now};
use crate::keys::request_log::{HOUR_MS, Rollup};
use crate::keys::request_queries::Grouping;
use crate::state::Gateway;
use crate::ui::session::Session;
use crate::ui::{charts, db_error, keys_of, layout};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The period shown.
#[derive(Debug, Deserialize, Default)]
pub struct Period {
    hours: Option<i64>,
}

/// The choices of period: hours, label.
const PERIODS: [(i64, &str); 3] = [(24, "24 hours"), (168, "7 days"), (720, "30 days")];

/// The width of the time charts' buckets for a period of `hours`: at most 48 buckets.
pub fn bucket_ms(hours: i64) -> i64 {
    let h = match hours {
        i64::MIN..=48 => 1,
        49..=288 => 6,
        _ => 24,
    };
    h * HOUR_MS
}

/// `rows` (summed per bucket of `bucket` ms) placed into `n` buckets starting at `first`;
/// rows outside are left out.
pub fn place(rows: &[Rollup], first: i64, bucket: i64, n: usize) -> Vec<Rollup> {
    let mut out: Vec<Rollup> = (0..n)
        .map(|i| Rollup {
            hour: first + i as i64 * bucket,
            ..Rollup::default()
        })
        .collect();
    for r in rows {
        if r.hour < first {
            continue;
        }
        if let Some(o) = out.get_mut(((r.hour - first) / bucket) as usize) {
            o.requests += r.requests;
            o.errors += r.errors;
            o.spend += r.spend;
            o.input_tokens += r.input_tokens;
            o.output_tokens += r.output_tokens;
        }
    }
    out
}

/// A key's budget left at the end of each bucket, from its spend now and its spend per
/// bucket: left after bucket `i` = budget - (spend now - spend in the buckets after `i`).
pub fn burn_down(budget: f64, spend_now: f64, per_bucket: &[f64]) -> Vec<f64> {
    let mut after = 0.0;
    let mut left = vec![0.0; per_bucket.len()];
    for i in (0..per_bucket.len()).rev() {
        left[i] = budget - (spend_now - after);
        after += per_bucket[i];
    }
    left
}

fn sorted(map: impl Iterator<Item = (String, f64)>) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = map.collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// `GET /ui/`.
pub async fn page(
    State(gw): State<Arc<Gateway>>,
    Extension(s): Extension<Session>,
    Query(p): Query<Period>,
) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let hours = p.hours.unwrap_or(24).clamp(1, 24 * 90);
    let bucket = bucket_ms(hours);
    let t = now() * 1000;
    let last = t - t.rem_euclid(bucket);
    let n = ((hours * HOUR_MS + bucket - 1) / bucket) as usize;
    let first = last - (n as i64 - 1) * bucket;
    let since = (t - (hours - 1) * HOUR_MS).max(first);
    let store = keys.store();
    let (series, per_key, per_model, all_keys) = match tokio::try_join!(
        store.rollups(since, Grouping::Bucket(bucket)),
        store.rollups(since, Grouping::Key),
        store.rollups(since, Grouping::Model),
        store.list(),
    ) {
        Ok(r) => r,
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let by_token: HashMap<&str, &KeyRecord> =
        all_keys.iter().map(|k| (k.token.as_str(), k)).collect();
    let label = |token: &str| match by_token.get(token) {
        Some(k) => key_label(k.key_alias.as_deref(), &k.key_name),
        None if token.is_empty() => "master key or none".to_string(),
        None => format!("deleted key {}", &token[..token.len().min(8)]),
    };
    let series = place(&series, first, bucket, n);
    let labels: Vec<String> = series.iter().map(|r| layout::hour(r.hour)).collect();
    let col = |f: fn(&Rollup) -> f64| series.iter().map(f).collect::<Vec<f64>>();
    let (requests, errors) = (col(|r| r.requests as f64), col(|r| r.errors as f64));
    let (spend, tokens) = (
        col(|r| r.spend),
        col(|r| (r.input_tokens + r.output_tokens) as f64),
    );
    let total = |v: &[f64]| v.iter().sum::<f64>();
    let model = |m: &str| {
        if m.is_empty() {
            "unknown model".to_string()
        } else {
            m.to_string()
        }
    };
    let requests_by_model = sorted(
        per_model
            .iter()
            .map(|r| (model(&r.model), r.requests as f64)),
    );
    let spend_by_model = sorted(per_model.iter().map(|r| (model(&r.model), r.spend)));
    let requests_by_key = sorted(
        per_key
            .iter()
            .map(|r| (label(&r.key_hash), r.requests as f64)),
    );
    let spend_by_key = sorted(per_key.iter().map(|r| (label(&r.key_hash), r.spend)));
    let mut top: Vec<&Rollup> = per_key.iter().collect();
    top.sort_by(|a, b| b.spend.total_cmp(&a.spend));
    // The burn-down: the five keys with a budget that spent most in the period.
    let budgeted: Vec<&KeyRecord> = top
        .iter()
        .filter_map(|r| by_token.get(r.key_hash.as_str()).copied())
        .filter(|k| k.max_budget.is_some())
        .take(5)
        .collect();
    let tokens_of: Vec<String> = budgeted.iter().map(|k| k.token.clone()).collect();
    let per_key_bucket = match store
        .rollups(since, Grouping::KeyBucket(bucket, tokens_of))
        .await
    {
        Ok(r) => r,
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let mut burn = Vec::new();
    for k in budgeted {
        let mine: Vec<Rollup> = per_key_bucket
            .iter()
            .filter(|r| r.key_hash == k.token)
            .cloned()
            .collect();
        let per: Vec<f64> = place(&mine, first, bucket, n)
            .iter()
            .map(|r| r.spend)
            .collect();
        let spend_now = keys.spend(k).await.unwrap_or(k.spend);
        burn.push((
            label(&k.token),
            burn_down(k.max_budget.unwrap_or(0.0), spend_now, &per),
        ));
    }
    let bucket_name = match bucket / HOUR_MS {
        1 => "per hour",
        6 => "per 6 hours",
        _ => "per day",
    };
    let body = html! {
        h1 { "Overview" }
        (layout::log_off_notice(gw.server.request_log))
        nav aria-label="Period" {
            p { "Period: "
                @for (h, name) in PERIODS {
                    @if h == hours { strong aria-current="true" { (name) } } @else { a href={ "/ui/?hours=" (h) } { (name) } }
                    " "
                }
            }
        }
        dl.totals {
            div { dt { "Requests" } dd data-total="requests" { (layout::count(total(&requests))) } }
            div { dt { "Errors" } dd data-total="errors" { (layout::count(total(&errors))) } }
            div { dt { "Spend" } dd data-total="spend" { (layout::usd(total(&spend))) } }
            div { dt { "Tokens" } dd data-total="tokens" { (layout::count(total(&tokens))) } }
        }
        h2 { "Over time (" (bucket_name) ", UTC)" }
        div.grid {
            (charts::columns("Requests", &labels, &requests, Some(("errors", &errors)), layout::count))
            (charts::columns("Spend", &labels, &spend, None, layout::usd))
            (charts::columns("Tokens", &labels, &tokens, None, layout::count))
        }
        h2 { "Per model" }
        div.grid {
            (charts::bars("Requests by model", "requests-by-model", &requests_by_model, layout::count))
            (charts::bars("Spend by model", "spend-by-model", &spend_by_model, layout::usd))
        }
        h2 { "Per key" }
        div.grid {
            (charts::bars("Requests by key", "requests-by-key", &requests_by_key, layout::count))
            (charts::bars("Spend by key", "spend-by-key", &spend_by_key, layout::usd))
        }
        h2 { "Top keys by spend" }
        div.table-wrap {
            table.responsive #top-keys {
                thead { tr { th scope="col" { "Key" } th.num scope="col" { "Requests" } th.num scope="col" { "Tokens" } th.num scope="col" { "Spend" } th.num scope="col" { "Budget" } } }
                tbody {
                    @for v in top.iter().take(10) {
                        tr {
                            td data-label="Key" { (label(&v.key_hash)) }
                            td.num data-label="Requests" { (layout::count(v.requests as f64)) }
                            td.num data-label="Tokens" { (layout::count((v.input_tokens + v.output_tokens) as f64)) }
                            td.num data-label="Spend" { (layout::usd(v.spend)) }
                            td.num data-label="Budget" { (by_token.get(v.key_hash.as_str()).and_then(|k| k.max_budget).map_or("none".to_string(), layout::usd)) }
                        }
                    }
                }
            }
        }
        h2 { "Budget burn-down" }
        (charts::lines("Budget left (USD), keys with a budget", &labels, &burn, layout::usd))
    };
    layout::respond(
        StatusCode::OK,
        layout::page("Overview", "/ui/", Some(&s.csrf), body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(hour: i64, key: &str, model: &str, requests: i64, spend: f64) -> Rollup {
        Rollup {
            hour,
            key_hash: key.into(),
            model: model.into(),
            requests,
            errors: 1,
            spend,
            input_tokens: 10,
            output_tokens: 5,
        }
    }

    #[test]
    fn rows_fall_into_their_buckets_and_old_ones_are_left_out() {
        let b = 6 * HOUR_MS;
        let placed = place(
            &[
                r(12 * HOUR_MS, "", "", 3, 0.5),
                r(18 * HOUR_MS, "", "", 2, 0.25),
                r(0, "", "", 100, 9.0),
                r(30 * HOUR_MS, "", "", 7, 1.0),
            ],
            12 * HOUR_MS,
            b,
            2,
        );
        let got: Vec<(i64, i64, i64)> = placed
            .iter()
            .map(|r| (r.hour, r.requests, r.errors))
            .collect();
        assert_eq!(got, vec![(12 * HOUR_MS, 3, 1), (18 * HOUR_MS, 2, 1)]);
        assert_eq!(placed[1].input_tokens + placed[1].output_tokens, 15);
    }

    #[test]
    fn long_periods_get_wider_buckets() {
        assert_eq!(bucket_ms(24), HOUR_MS);
        assert_eq!(bucket_ms(168), 6 * HOUR_MS);
        assert_eq!(bucket_ms(720), 24 * HOUR_MS);
    }

    #[test]
    fn burn_down_ends_at_the_budget_left_now() {
        // Budget 10, spent 4 now, 1 and 2 of it in the last two hours.
        assert_eq!(burn_down(10.0, 4.0, &[0.0, 1.0, 2.0]), vec![9.0, 8.0, 6.0]);
    }
}
