//! The Amazon Bedrock AgentCore Runtime data plane: `InvokeAgentRuntime`, as botocore's
//! `bedrock-agentcore` API model (2024-02-28) defines it.
//!
//! `POST /runtimes/{agentRuntimeArn}/invocations[?qualifier=Q][&accountId=A]` with the
//! agent's own payload (up to 100 MB), authenticated by SigV4 (signing name
//! `bedrock-agentcore`) or, for OAuth runtimes, `Authorization: Bearer`. The answer is the
//! agent's: its content type (`application/json`, `text/event-stream`) and body, with the
//! session ID echoed in `X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`.
//!
//! Which runtimes exist:
//! - every runtime ID in the emulator's accounts ([`AgentCoreConfig::accounts`],
//!   `123456789012` by default); any other account's runtime is `ResourceNotFoundException`;
//! - each has the endpoint `DEFAULT` plus [`AgentCoreConfig::endpoints`] (`prod` by default);
//! - a runtime whose name (the ID before its 10-character suffix) starts with `oauth`, or
//!   whose ID is in [`AgentCoreConfig::oauth_runtimes`], is configured for OAuth: it takes
//!   only bearer tokens from [`AgentCoreConfig::bearer_tokens`];
//! - a runtime named by a [`Forward`] rule (or all, for a rule without a runtime ID) is
//!   forwarded to a local agent ([`forward`]); the others are scripted ([`script`]).
//!
//! Tests read the calls received at `/_emulator/agentcore/invocations` ([`observe`]).

pub mod answer;
pub mod auth;
pub mod errors;
pub mod forward;
mod handler;
pub mod observe;
pub mod script;
pub mod target;

use crate::sigv4::Keyring;
use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The account whose runtimes the emulator serves, unless configured otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// Runtimes whose name starts with this are configured for OAuth (bearer tokens).
pub const OAUTH_NAME_PREFIX: &str = "oauth";
/// The model's limit on `payload` (`Body`: max 100000000 bytes).
pub const MAX_PAYLOAD: usize = 100_000_000;

/// A forward rule: `[RUNTIME_ID=]URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The runtime it applies to; `None`: every runtime of the account.
    pub runtime_id: Option<String>,
    /// The agent's base URL (`http://127.0.0.1:8080`).
    pub url: String,
}

impl Forward {
    /// Parses `URL` or `RUNTIME_ID=URL`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (id, url) = match s.split_once('=') {
            Some((id, url)) if !id.contains("://") => (Some(id.trim().to_string()), url.trim()),
            _ => (None, s.trim()),
        };
        if let Some(id) = &id
            && !target::runtime_id(id)
        {
            return Err(format!("{id:?} is not a runtime ID (NAME-XXXXXXXXXX)"));
        }
        if !url.starts_with("http://") || url.parse::<axum::http::Uri>().is_err() {
            return Err(format!("{url:?} is not an http:// URL"));
        }
        Ok(Self {
            runtime_id: id,
            url: url.to_string(),
        })
    }
}

/// How the AgentCore side behaves.
#[derive(Debug, Clone)]
pub struct AgentCoreConfig {
    /// The accounts whose runtimes exist.
    pub accounts: Vec<String>,
    /// Named endpoints every runtime has besides `DEFAULT`.
    pub endpoints: Vec<String>,
    /// Runtimes forwarded to local agents (the first matching rule wins).
    pub forward: Vec<Forward>,
    /// Bearer tokens OAuth runtimes accept.
    pub bearer_tokens: Vec<SecretString>,
    /// Runtime IDs configured for OAuth (besides those named `oauth...`).
    pub oauth_runtimes: Vec<String>,
}

impl Default for AgentCoreConfig {
    fn default() -> Self {
        Self {
            accounts: vec![DEFAULT_ACCOUNT_ID.into()],
            endpoints: vec!["prod".into()],
            forward: Vec::new(),
            bearer_tokens: Vec::new(),
            oauth_runtimes: Vec::new(),
        }
    }
}

impl AgentCoreConfig {
    /// Whether `runtime` is configured for OAuth (bearer tokens) rather than SigV4.
    pub fn is_oauth(&self, runtime: &target::Runtime) -> bool {
        runtime.name().starts_with(OAUTH_NAME_PREFIX) || self.oauth_runtimes.contains(&runtime.id)
    }

    /// The agent URL `runtime_id` is forwarded to, if any.
    pub fn forward_for(&self, runtime_id: &str) -> Option<&str> {
        self.forward
            .iter()
            .find(|f| f.runtime_id.as_deref().is_none_or(|id| id == runtime_id))
            .map(|f| f.url.as_str())
    }
}

/// What the emulator remembers of one runtime session.
#[derive(Debug, Default)]
struct Session {
    calls: u32,
    prompts: Vec<String>,
    pinged: bool,
}

const MAX_SESSIONS: usize = 100_000;

/// Shared state of the AgentCore side.
pub struct State {
    config: AgentCoreConfig,
    keys: Keyring,
    verify_signatures: bool,
    sessions: Mutex<HashMap<String, Session>>,
    recorded: Mutex<VecDeque<Value>>,
    client: forward::AgentClient,
}

/// The AgentCore routes, ready to merge into the emulator's router.
pub fn router<S: Clone + Send + Sync + 'static>(config: &crate::EmulatorConfig) -> Router<S> {
    let mut keys = Keyring::default();
    for (ak, sk, tok) in &config.credentials {
        keys.add(ak, sk, tok.as_deref());
    }
    let state = Arc::new(State {
        config: config.agentcore.clone(),
        keys,
        verify_signatures: config.verify_signatures,
        sessions: Mutex::new(HashMap::new()),
        recorded: Mutex::new(VecDeque::new()),
        client: forward::client(),
    });
    Router::new()
        .route(
            "/runtimes/{agent_runtime_arn}/invocations",
            post(handler::invoke),
        )
        .route(
            "/_emulator/agentcore/invocations",
            get(observe::list).delete(observe::clear),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_rules_name_one_runtime_or_all() {
        let all = Forward::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(all.runtime_id, None);
        let one = Forward::parse("tool_agent-AbCdE12345=http://127.0.0.1:9").unwrap();
        assert_eq!(one.runtime_id.as_deref(), Some("tool_agent-AbCdE12345"));
        assert!(Forward::parse("bad=http://x").is_err());
        assert!(Forward::parse("https://example.com").is_err());
        let c = AgentCoreConfig {
            forward: vec![one, all],
            ..Default::default()
        };
        assert_eq!(
            c.forward_for("tool_agent-AbCdE12345"),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            c.forward_for("other-AbCdE12345"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(AgentCoreConfig::default().forward_for("x-AbCdE12345"), None);
    }

    #[test]
    fn oauth_runtimes_are_named_oauth_or_listed() {
        let rt = |id: &str| target::runtime(id, Some(DEFAULT_ACCOUNT_ID), "us-east-1").unwrap();
        let c = AgentCoreConfig {
            oauth_runtimes: vec!["listed-AbCdE12345".into()],
            ..Default::default()
        };
        assert!(c.is_oauth(&rt("oauth_agent-AbCdE12345")));
        assert!(c.is_oauth(&rt("listed-AbCdE12345")));
        assert!(!c.is_oauth(&rt("plain-AbCdE12345")));
    }
}
