//! The page shell (head, navigation, sign-out button), the stylesheet compiled into the
//! binary, the response headers every UI page carries, and number and time formats.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The stylesheet, inlined in every page.
pub const CSS: &str = include_str!("ui.css");

/// The Content-Security-Policy: nothing but this page's own stylesheet (by hash), forms
/// posting to the gateway, no scripts, no frames.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The pages in the navigation: path, label.
const NAV: [(&str, &str); 4] = [
    ("/ui/", "Overview"),
    ("/ui/keys", "Keys"),
    ("/ui/models", "Models"),
    ("/ui/requests", "Requests"),
];

/// A whole page: `active` is the navigation entry's path; `csrf` is the session's form
/// token (None on the sign-in page, which has no navigation).
pub fn page(title: &str, active: &str, csrf: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · agentbridge" }
                style { (PreEscaped(CSS)) }
            }
            body {
                @if let Some(csrf) = csrf {
                    header.top {
                        a.brand href="/ui/" { "agentbridge" }
                        nav aria-label="Main" {
                            ul {
                                @for (path, label) in NAV {
                                    li {
                                        @if path == active {
                                            a href=(path) aria-current="page" { (label) }
                                        } @else {
                                            a href=(path) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML response with the UI's headers: never cached (pages show keys' state and, once,
/// a new key), not framed, scripts off by policy.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if let Ok(v) = HeaderValue::from_str(&CSP) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// A page saying what went wrong.
pub fn error_page(status: StatusCode, message: &str, csrf: Option<&str>) -> Response {
    respond(
        status,
        page(
            "Error",
            "",
            csrf,
            html! {
                h1 { "Something went wrong" }
                p.notice.error role="alert" { (message) }
                p { a href="/ui/" { "Back to the overview" } }
            },
        ),
    )
}

/// Said on the pages read from the request log when the log is off
/// (`disable_spend_logs: true`), so that an empty page is not taken for no traffic.
pub fn log_off_notice(request_log: bool) -> Markup {
    html! {
        @if !request_log {
            p.notice role="status" #log-off {
                "The request log is off (" code { "disable_spend_logs: true" } "): no requests are "
                "recorded, so this page shows none. Spend, budgets and rate limits still work."
            }
        }
    }
}

/// USD with cents, or more digits below a cent.
pub fn usd(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 {
        format!("${v:.6}")
    } else {
        format!("${v:.2}")
    }
}

/// A count with thousands separators.
pub fn count(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(ms: i64) -> String {
    let s = crate::router::health::rfc3339(ms.max(0) as u64);
    format!("{} {}", &s[..10], &s[11..19])
}

/// Unix ms as `MM-DD HH:00` (an hour bucket).
pub fn hour(ms: i64) -> String {
    let s = crate::router::health::rfc3339(ms.max(0) as u64);
    format!("{} {}:00", &s[5..10], &s[11..13])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(count(1234567.0), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(usd(12.5), "$12.50");
        assert_eq!(usd(0.000123), "$0.000123");
        assert_eq!(time(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(hour(1_700_000_000_123), "11-14 22:00");
    }

    #[test]
    fn pages_forbid_scripts_framing_and_caching() {
        let r = respond(StatusCode::OK, html! { p { "x" } });
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!csp.contains("script-src"));
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-frame-options"], "DENY");
    }
}
