//! API key checks. Keys are compared as SHA-256 digests in constant time.

use crate::error::ProxyError;
use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The bearer token of a request: `Authorization: Bearer ...`, or `x-litellm-api-key` /
/// `api-key` as LiteLLM accepts, or `x-api-key` as Anthropic's SDKs send it.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        return Some(
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v)
                .trim(),
        );
    }
    ["x-litellm-api-key", "api-key", "x-api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Constant-time equality of two secrets (lengths leak nothing: digests are compared).
pub fn same_key(given: &str, expected: &SecretString) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.expose_secret().as_bytes());
    a.ct_eq(&b).into()
}

/// Checks the master key, if one is configured.
pub fn check(headers: &HeaderMap, master: Option<&SecretString>) -> Result<(), ProxyError> {
    let Some(master) = master else { return Ok(()) };
    match bearer(headers) {
        None | Some("") => Err(ProxyError::Unauthorized(
            "missing API key: send Authorization: Bearer <key>".into(),
        )),
        Some(k) if same_key(k, master) => Ok(()),
        Some(_) => Err(ProxyError::Unauthorized("invalid API key".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(k: &str, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
        h
    }

    #[test]
    fn master_key_is_required_when_set() {
        let key = SecretString::from("correct-horse-battery-staple");
        assert!(check(&HeaderMap::new(), None).is_ok());
        assert!(check(&HeaderMap::new(), Some(&key)).is_err());
        assert!(check(&headers("authorization", "Bearer wrong"), Some(&key)).is_err());
        assert!(
            check(
                &headers("authorization", "Bearer correct-horse-battery-staple"),
                Some(&key)
            )
            .is_ok()
        );
        assert!(
            check(
                &headers("x-litellm-api-key", "correct-horse-battery-staple"),
                Some(&key)
            )
            .is_ok()
        );
    }

    #[test]
    fn error_messages_never_echo_the_key() {
        let key = SecretString::from("correct-horse-battery-staple");
        let e = check(
            &headers("authorization", "Bearer sk-wrong-secret-value"),
            Some(&key),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("sk-wrong-secret-value"));
    }
}
