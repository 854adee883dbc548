//! Signing in to the admin UI: the session cookie, its attributes, and the form token
//! (CSRF) every POST carries.
//!
//! Only the master key signs in (compared in constant time, as on the API). A session is a
//! random 256-bit value in a cookie (`HttpOnly; SameSite=Strict; Path=/ui`, `Secure` when the
//! request came over TLS); the database keeps its SHA-256, its expiry and its form token, so
//! every instance knows it and signing out ends it everywhere. Forms carry the token in a
//! hidden field `csrf`; a POST whose token is missing or wrong is refused with 403 before
//! its handler runs.

use crate::keys::record::now;
use crate::keys::token_of;
use crate::keys::ui_sessions::UiSession;
use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "agentbridge_ui";

/// A signed-in session, as handlers see it.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie value (the database's id for it).
    pub id_hash: String,
    /// The form token to put in every form.
    pub csrf: String,
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A new session lasting `ttl_secs`: the cookie value (for the client only) and what the
/// database stores under [`token_of`] of it.
pub fn new_session(ttl_secs: i64) -> (String, UiSession) {
    (
        random_token(),
        UiSession {
            csrf: random_token(),
            expires_at: now() + ttl_secs,
        },
    )
}

/// The database id of a cookie value.
pub fn id_hash(cookie_value: &str) -> String {
    token_of(cookie_value)
}

/// The session cookie's value in a request, if any (the first `agentbridge_ui=` in any
/// `Cookie` header).
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the client reached the gateway over TLS (the gateway itself speaks plain HTTP:
/// a proxy in front says so with `X-Forwarded-Proto: https` or `Forwarded: proto=https`).
pub fn over_tls(headers: &HeaderMap) -> bool {
    let text = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    text("x-forwarded-proto")
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        || text("forwarded").is_some_and(|v| {
            v.split([';', ','])
                .filter_map(|kv| kv.trim().split_once('='))
                .any(|(k, val)| {
                    k.eq_ignore_ascii_case("proto")
                        && val.trim_matches('"').eq_ignore_ascii_case("https")
                })
        })
}

/// The `Set-Cookie` value starting a session that lasts `max_age` seconds.
pub fn set_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("agentbridge_ui=; Path=/ui; Max-Age=0"))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static(
            "agentbridge_ui=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0; Secure",
        )
    } else {
        HeaderValue::from_static("agentbridge_ui=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0")
    }
}

/// Whether a form's token is the session's (constant time; a missing token never is).
pub fn csrf_ok(session: &Session, given: Option<&str>) -> bool {
    match given {
        Some(g) if !g.is_empty() => g.as_bytes().ct_eq(session.csrf.as_bytes()).into(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_is_http_only_same_site_strict_and_scoped_to_ui() {
        let c = set_cookie("abc", 3600, false);
        let c = c.to_str().unwrap();
        assert_eq!(
            c,
            "agentbridge_ui=abc; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=3600"
        );
        assert!(!c.contains("Secure"));
    }

    #[test]
    fn the_cookie_is_secure_behind_tls() {
        assert!(
            set_cookie("abc", 60, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert!(
            clear_cookie(true)
                .to_str()
                .unwrap()
                .contains("Max-Age=0; Secure")
        );
        assert!(over_tls(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_tls(&headers(&[("x-forwarded-proto", "HTTPS, http")])));
        assert!(over_tls(&headers(&[(
            "forwarded",
            "for=1.2.3.4;proto=https"
        )])));
        assert!(!over_tls(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_tls(&headers(&[])));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; agentbridge_ui=xyz; b=2")]);
        assert_eq!(cookie_value(&h), Some("xyz"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "agentbridge_ui=q")]);
        assert_eq!(cookie_value(&h), Some("q"));
        assert_eq!(
            cookie_value(&headers(&[("cookie", "agentbridge_ui=")])),
            None
        );
        assert_eq!(
            cookie_value(&headers(&[("cookie", "xagentbridge_ui=1")])),
            None
        );
    }

    #[test]
    fn a_form_token_must_be_the_sessions_own() {
        let (_, stored) = new_session(60);
        let s = Session {
            id_hash: "h".into(),
            csrf: stored.csrf.clone(),
        };
        assert!(csrf_ok(&s, Some(&stored.csrf)));
        assert!(!csrf_ok(&s, None));
        assert!(!csrf_ok(&s, Some("")));
        assert!(!csrf_ok(&s, Some(&stored.csrf[..10])));
        assert!(!csrf_ok(&s, Some(&random_token())));
    }

    #[test]
    fn sessions_are_random_expire_and_are_stored_as_hashes() {
        let (a, sa) = new_session(60);
        let (b, sb) = new_session(60);
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert_eq!(a.len(), 64);
        assert!(sa.expires_at > now() && sa.expires_at <= now() + 60);
        assert_ne!(id_hash(&a), a);
        assert_eq!(id_hash(&a), token_of(&a));
    }
}
