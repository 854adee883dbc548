//! The overview: requests, errors, spend and tokens per hour; requests and spend per model
//! and per key; the top keys by spend; the budget burn-down of keys with a budget. Read
//! from the hourly rollups, so it costs the same at a thousand or a million requests.

use super::key_label;
use crate::keys::record::{KeyRecord, now};
use crate::keys::request_log::{HOUR_MS, Rollup};
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

/// What the overview shows, summed from rollups.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    /// Start of each hour shown, Unix ms.
    pub hours: Vec<i64>,
    /// Per hour.
    pub requests: Vec<f64>,
    /// Per hour.
    pub errors: Vec<f64>,
    /// Per hour, USD.
    pub spend: Vec<f64>,
    /// Per hour, input + output.
    pub tokens: Vec<f64>,
    /// Per model: requests, spend.
    pub by_model: HashMap<String, (f64, f64)>,
    /// Per key token.
    pub by_key: HashMap<String, KeySum>,
}

/// One key's figures over the period.
#[derive(Debug, Default, PartialEq)]
pub struct KeySum {
    /// Requests.
    pub requests: f64,
    /// Input + output tokens.
    pub tokens: f64,
    /// USD.
    pub spend: f64,
    /// USD per hour.
    pub per_hour: Vec<f64>,
}

/// Sums `rollups` into `n` hourly buckets ending with the hour of `now_ms`.
pub fn summarize(rollups: &[Rollup], now_ms: i64, n: usize) -> Summary {
    let last = now_ms - now_ms.rem_euclid(HOUR_MS);
    let first = last - (n as i64 - 1) * HOUR_MS;
    let mut s = Summary {
        hours: (0..n).map(|i| first + i as i64 * HOUR_MS).collect(),
        requests: vec![0.0; n],
        errors: vec![0.0; n],
        spend: vec![0.0; n],
        tokens: vec![0.0; n],
        ..Summary::default()
    };
    for r in rollups {
        if r.hour < first || r.hour > last {
            continue;
        }
        let i = ((r.hour - first) / HOUR_MS) as usize;
        let tokens = (r.input_tokens + r.output_tokens) as f64;
        s.requests[i] += r.requests as f64;
        s.errors[i] += r.errors as f64;
        s.spend[i] += r.spend;
        s.tokens[i] += tokens;
        let m = s.by_model.entry(r.model.clone()).or_default();
        m.0 += r.requests as f64;
        m.1 += r.spend;
        let k = s
            .by_key
            .entry(r.key_hash.clone())
            .or_insert_with(|| KeySum {
                per_hour: vec![0.0; n],
                ..KeySum::default()
            });
        k.requests += r.requests as f64;
        k.tokens += tokens;
        k.spend += r.spend;
        k.per_hour[i] += r.spend;
    }
    s
}

/// A key's budget left at the end of each hour, from its spend now and its spend per hour:
/// left after hour `i` = budget - (spend now - spend in the hours after `i`).
pub fn burn_down(budget: f64, spend_now: f64, per_hour: &[f64]) -> Vec<f64> {
    let mut after = 0.0;
    let mut left = vec![0.0; per_hour.len()];
    for i in (0..per_hour.len()).rev() {
        left[i] = budget - (spend_now - after);
        after += per_hour[i];
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
    let t = now() * 1000;
    let since = t - (hours - 1) * HOUR_MS;
    let rollups = match keys.store().rollups(since).await {
        Ok(r) => r,
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let all_keys = match keys.store().list().await {
        Ok(k) => k,
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let by_token: HashMap<&str, &KeyRecord> =
        all_keys.iter().map(|k| (k.token.as_str(), k)).collect();
    let label = |token: &str| match by_token.get(token) {
        Some(k) => key_label(k.key_alias.as_deref(), &k.key_name),
        None if token.is_empty() => "master key".to_string(),
        None => format!("deleted key {}", &token[..token.len().min(8)]),
    };
    let sum = summarize(&rollups, t, hours as usize);
    let labels: Vec<String> = sum.hours.iter().map(|h| layout::hour(*h)).collect();
    let total = |v: &[f64]| v.iter().sum::<f64>();
    let requests_by_model = sorted(sum.by_model.iter().map(|(m, v)| (m.clone(), v.0)));
    let spend_by_model = sorted(sum.by_model.iter().map(|(m, v)| (m.clone(), v.1)));
    let requests_by_key = sorted(sum.by_key.iter().map(|(k, v)| (label(k), v.requests)));
    let spend_by_key = sorted(sum.by_key.iter().map(|(k, v)| (label(k), v.spend)));
    let mut top: Vec<(&String, &KeySum)> = sum.by_key.iter().collect();
    top.sort_by(|a, b| b.1.spend.total_cmp(&a.1.spend));
    let mut burn = Vec::new();
    for (token, v) in &top {
        if let Some(k) = by_token.get(token.as_str())
            && let Some(budget) = k.max_budget
            && burn.len() < 5
        {
            let spend_now = keys.spend(k).await.unwrap_or(k.spend);
            burn.push((label(token), burn_down(budget, spend_now, &v.per_hour)));
        }
    }
    let body = html! {
        h1 { "Overview" }
        nav aria-label="Period" {
            p { "Period: "
                @for (h, name) in PERIODS {
                    @if h == hours { strong aria-current="true" { (name) } } @else { a href={ "/ui/?hours=" (h) } { (name) } }
                    " "
                }
            }
        }
        dl.totals {
            div { dt { "Requests" } dd data-total="requests" { (layout::count(total(&sum.requests))) } }
            div { dt { "Errors" } dd data-total="errors" { (layout::count(total(&sum.errors))) } }
            div { dt { "Spend" } dd data-total="spend" { (layout::usd(total(&sum.spend))) } }
            div { dt { "Tokens" } dd data-total="tokens" { (layout::count(total(&sum.tokens))) } }
        }
        h2 { "Over time (per hour, UTC)" }
        div.grid {
            (charts::columns("Requests", &labels, &sum.requests, Some(("errors", &sum.errors)), layout::count))
            (charts::columns("Spend", &labels, &sum.spend, None, layout::usd))
            (charts::columns("Tokens", &labels, &sum.tokens, None, layout::count))
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
                    @for (token, v) in top.iter().take(10) {
                        tr {
                            td data-label="Key" { (label(token)) }
                            td.num data-label="Requests" { (layout::count(v.requests)) }
                            td.num data-label="Tokens" { (layout::count(v.tokens)) }
                            td.num data-label="Spend" { (layout::usd(v.spend)) }
                            td.num data-label="Budget" { (by_token.get(token.as_str()).and_then(|k| k.max_budget).map_or("none".to_string(), layout::usd)) }
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
    fn rollups_fall_into_their_hours_and_old_ones_are_left_out() {
        let now = 10 * HOUR_MS + 123;
        let s = summarize(
            &[
                r(10 * HOUR_MS, "a", "m1", 3, 0.5),
                r(9 * HOUR_MS, "b", "m2", 2, 0.25),
                r(7 * HOUR_MS, "a", "m1", 100, 9.0),
            ],
            now,
            3,
        );
        assert_eq!(s.hours, vec![8 * HOUR_MS, 9 * HOUR_MS, 10 * HOUR_MS]);
        assert_eq!(s.requests, vec![0.0, 2.0, 3.0]);
        assert_eq!(s.errors, vec![0.0, 1.0, 1.0]);
        assert_eq!(s.tokens, vec![0.0, 15.0, 15.0]);
        assert_eq!(s.by_model["m1"], (3.0, 0.5));
        assert_eq!(s.by_key["b"].per_hour, vec![0.0, 0.25, 0.0]);
    }

    #[test]
    fn burn_down_ends_at_the_budget_left_now() {
        // Budget 10, spent 4 now, 1 and 2 of it in the last two hours.
        assert_eq!(burn_down(10.0, 4.0, &[0.0, 1.0, 2.0]), vec![9.0, 8.0, 6.0]);
    }
}
