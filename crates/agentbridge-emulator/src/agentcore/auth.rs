//! Who may call a runtime: SigV4 with the signing name `bedrock-agentcore` (checked by the
//! emulator's own verifier, [`crate::sigv4`]), or, for runtimes configured for OAuth,
//! `Authorization: Bearer <token>` with an accepted token. A runtime takes one method only:
//! the other is refused as AWS does ("Authorization method mismatch").

use super::errors::{AgentCoreError, ErrorKind, Refusal};
use crate::sigv4::{self, Keyring, SignedRequest};
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// The SigV4 signing name of AgentCore's data plane.
pub const SIGNING_NAME: &str = "bedrock-agentcore";

/// How a call authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A valid SigV4 signature (or signatures not checked).
    SigV4,
    /// An accepted bearer token.
    Bearer,
}

impl Method {
    /// `sigv4` or `bearer`, as recorded for tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SigV4 => "sigv4",
            Self::Bearer => "bearer",
        }
    }
}

/// What authentication needs to know.
pub struct Authenticator<'a> {
    /// Accepted SigV4 keys.
    pub keys: &'a Keyring,
    /// Whether SigV4 signatures are checked.
    pub verify_signatures: bool,
    /// Accepted bearer tokens (OAuth runtimes).
    pub bearer_tokens: &'a [SecretString],
}

const MISMATCH: &str = "Authorization method mismatch. The agent is configured for a different authorization method than what was used in your request. Check the agent's authorization configuration and ensure your request uses the matching method (OAuth or SigV4)";

impl Authenticator<'_> {
    /// Checks the call against the runtime's method (`oauth`: configured for OAuth).
    pub fn check(&self, parts: &Parts, body: &[u8], oauth: bool) -> Result<Method, Refusal> {
        let auth = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let bearer = auth
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map(|_| auth[7..].trim());
        match (oauth, bearer) {
            (true, Some(token)) => {
                let ok = self
                    .bearer_tokens
                    .iter()
                    .any(|t| bool::from(t.expose_secret().as_bytes().ct_eq(token.as_bytes())));
                if ok {
                    Ok(Method::Bearer)
                } else {
                    Err(AgentCoreError::new(ErrorKind::Unauthorized, "Invalid Bearer token").into())
                }
            }
            (true, None) if auth.is_empty() => Err(AgentCoreError::new(
                ErrorKind::Unauthorized,
                "Missing Authentication Token: this agent runtime requires an OAuth bearer token",
            )
            .into()),
            (true, None) | (false, Some(_)) => {
                Err(AgentCoreError::new(ErrorKind::AccessDenied, MISMATCH).into())
            }
            (false, None) => self.sigv4(parts, body).map(|()| Method::SigV4),
        }
    }

    fn sigv4(&self, parts: &Parts, body: &[u8]) -> Result<(), Refusal> {
        if !self.verify_signatures {
            return Ok(());
        }
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let signed = SignedRequest {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            body,
        };
        sigv4::verify_for_service(&signed, self.keys, chrono::Utc::now(), SIGNING_NAME)
            .map(|_| ())
            .map_err(Refusal::Signature)
    }
}
