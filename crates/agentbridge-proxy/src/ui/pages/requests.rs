//! Recent requests: time, key, model, door, status, latency, time to first token, tokens,
//! cost, session; filtered by key, model and status; paged by keyset (the last row's time
//! and id), so page 1,000 costs what page 1 does. Never a prompt or an answer: the log has
//! none.

use super::key_label;
use crate::keys::request_queries::Filter;
use crate::state::Gateway;
use crate::ui::session::Session;
use crate::ui::{db_error, keys_of, layout};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Rows per page.
pub const PAGE: i64 = 50;

/// The list's query: filters and the cursor.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    key: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    status: String,
    /// `{time_ms}.{id}` of the last row of the previous page.
    #[serde(default)]
    before: String,
}

/// The cursor in `before`, if it is one.
pub fn cursor(before: &str) -> Option<(i64, &str)> {
    let (t, id) = before.split_once('.')?;
    Some((t.parse().ok()?, id))
}

const STATUSES: [(&str, &str); 10] = [
    ("", "any"),
    ("ok", "succeeded (< 400)"),
    ("error", "failed (>= 400)"),
    ("200", "200"),
    ("400", "400"),
    ("401", "401"),
    ("403", "403"),
    ("404", "404"),
    ("429", "429"),
    ("503", "503"),
];

fn ms(v: f64) -> String {
    format!("{v:.0} ms")
}

/// `GET /ui/requests`.
pub async fn page(
    State(gw): State<Arc<Gateway>>,
    Extension(s): Extension<Session>,
    Query(q): Query<ListQuery>,
) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let filter = Filter {
        key_hash: q.key.clone(),
        model: q.model.clone(),
        status: q.status.clone(),
    };
    let rows = match keys
        .store()
        .requests(&filter, cursor(&q.before), PAGE + 1)
        .await
    {
        Ok(r) => r,
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let all_keys = match keys.store().list().await {
        Ok(k) => k,
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let names: HashMap<&str, String> = all_keys
        .iter()
        .map(|k| {
            (
                k.token.as_str(),
                key_label(k.key_alias.as_deref(), &k.key_name),
            )
        })
        .collect();
    let more = rows.len() as i64 > PAGE;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let next = rows.last().filter(|_| more).map(|r| {
        let mut u = links::query(&[
            ("key", &q.key),
            ("model", &q.model),
            ("status", &q.status),
            ("before", &format!("{}.{}", r.time_ms, r.id)),
        ]);
        u.insert_str(0, "/ui/requests?");
        u
    });
    let models = gw.model_names();
    let body = html! {
        h1 { "Requests" }
        (layout::log_off_notice(gw.server.request_log))
        form.stack method="get" action="/ui/requests" aria-label="Filter requests" {
            label for="f-key" { "Key"
                select #f-key name="key" {
                    option value="" selected[q.key.is_empty()] { "any" }
                    option value="-" selected[q.key == "-"] { "master key" }
                    @for k in &all_keys {
                        option value=(k.token) selected[q.key == k.token] { (key_label(k.key_alias.as_deref(), &k.key_name)) }
                    }
                }
            }
            label for="f-model" { "Model"
                select #f-model name="model" {
                    option value="" selected[q.model.is_empty()] { "any" }
                    @for m in &models { option value=(m) selected[&q.model == m] { (m) } }
                }
            }
            label for="f-status" { "Status"
                select #f-status name="status" {
                    @for (v, label) in STATUSES { option value=(v) selected[q.status == v] { (label) } }
                }
            }
            button type="submit" { "Filter" }
        }
        p.muted { "Newest first, " (PAGE) " per page. Prompts and answers are never stored." }
        div.table-wrap {
            table.responsive #requests {
                thead { tr {
                    th scope="col" { "Time (UTC)" } th scope="col" { "Key" } th scope="col" { "Model" } th scope="col" { "Door" }
                    th scope="col" { "Status" } th.num scope="col" { "Latency" } th.num scope="col" { "TTFT" }
                    th.num scope="col" { "Tokens in / out" } th.num scope="col" { "Cost" } th scope="col" { "Session" }
                } }
                tbody {
                    @for r in rows {
                        tr data-status=(r.status) {
                            td data-label="Time" { (layout::time(r.time_ms)) }
                            td data-label="Key" {
                                @if r.key_hash.is_empty() {
                                    span.muted { @if r.status == 401 { "no valid key" } @else { "master key" } }
                                } @else {
                                    (names.get(r.key_hash.as_str()).cloned().unwrap_or_else(|| key_label(r.key_alias.as_deref(), "deleted key")))
                                }
                            }
                            td data-label="Model" { @if r.model.is_empty() { span.muted { "unknown" } } @else { (r.model) } }
                            td data-label="Door" { (r.door) }
                            td data-label="Status" {
                                @if r.status < 400 { span.status-ok { (r.status) } }
                                @else { span.status-error { (r.status) @if let Some(c) = &r.error_class { " " (c) } } }
                            }
                            td.num data-label="Latency" { (ms(r.latency_ms)) }
                            td.num data-label="TTFT" { @match r.ttft_ms { Some(t) => (ms(t)), None => span.muted { "–" } } }
                            td.num data-label="Tokens" { (r.input_tokens) " / " (r.output_tokens) }
                            td.num data-label="Cost" { (layout::usd(r.cost)) }
                            td data-label="Session" { @if let Some(sess) = &r.session { code { (sess) } } }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "No requests match." } }
        nav.pager aria-label="Pages" {
            @if !q.before.is_empty() { a href="/ui/requests" { "Newest" } }
            @if let Some(n) = next { a #next-page href=(n) rel="next" { "Older" } }
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page("Requests", "/ui/requests", Some(&s.csrf), body),
    )
}

/// Query-string encoding of the list's links.
mod links {
    /// `k=v&...`, each part percent-encoded.
    pub fn query(pairs: &[(&str, &str)]) -> String {
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_time_and_id() {
        assert_eq!(
            cursor("1700000000000.abc-1"),
            Some((1_700_000_000_000, "abc-1"))
        );
        assert_eq!(cursor("x.abc"), None);
        assert_eq!(cursor(""), None);
    }

    #[test]
    fn links_encode_their_values() {
        assert_eq!(
            links::query(&[("model", "a b&c"), ("key", "")]),
            "model=a%20b%26c"
        );
    }
}
