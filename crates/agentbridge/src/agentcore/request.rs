//! The canonical request -> InvokeAgentRuntime's payload and runtime session (pure).
//!
//! The payload is LiteLLM's `{"prompt": <last user message text>}` plus every non-OpenAI
//! field, the deployment's (`agent_params`) first and then the request's. With the
//! deployment setting `send_conversation: true` it also carries the whole conversation:
//! `messages` (the OpenAI messages, system prompt included) and `system_prompt` (the
//! system and developer messages' text, when there are any).

use crate::canonical::AgentRequest;
use crate::error::{Error, Result};
use crate::params::{GATEWAY_PARAMS, OPENAI_PARAMS, is_deployment_param};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The API model's limits on `runtimeSessionId` (`SessionType`: 33-256 characters).
pub const SESSION_LEN: std::ops::RangeInclusive<usize> = 33..=256;
/// The API model's limit on the payload (`Body`: 100,000,000 bytes).
pub const MAX_PAYLOAD: usize = 100_000_000;
/// The prefix of runtime sessions derived from a client's short session ID.
pub const DERIVED_PREFIX: &str = "agentbridge-session-";

/// The runtime session for `req`: the client's (`session_id`, `sessionID`, `sessionId` or
/// `runtimeSessionId`, else the deployment's `runtimeSessionId`) when it has 33-256
/// characters; a shorter one maps to [`derived_session`] (same input, same session); none
/// gives a fresh UUID (36 characters).
pub fn session_for(req: &AgentRequest, agent_params: &Map<String, Value>) -> Result<String> {
    let pinned = req
        .pinned_session()
        .or_else(|| agent_params.get("runtimeSessionId").and_then(Value::as_str));
    match pinned {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some("") => Err(Error::invalid("session_id", "session_id must not be empty")),
        Some(s) if s.len() > *SESSION_LEN.end() => Err(Error::invalid(
            "session_id",
            format!(
                "session_id has {} characters; AgentCore Runtime takes at most 256",
                s.len()
            ),
        )),
        Some(s) if s.chars().any(char::is_control) => Err(Error::invalid(
            "session_id",
            "session_id must not contain control characters",
        )),
        Some(s) if s.len() < *SESSION_LEN.start() => Ok(derived_session(s)),
        Some(s) => Ok(s.to_string()),
    }
}

/// A valid runtime session (52 characters) derived from a short client session ID:
/// [`DERIVED_PREFIX`] and the first 32 hex digits of its SHA-256.
pub fn derived_session(client: &str) -> String {
    let digest = hex::encode(Sha256::digest(client.as_bytes()));
    format!("{DERIVED_PREFIX}{}", &digest[..32])
}

/// Whether `key` goes into the agent's payload.
fn is_payload_param(key: &str) -> bool {
    !OPENAI_PARAMS.contains(&key) && !GATEWAY_PARAMS.contains(&key) && !is_deployment_param(key)
}

/// The JSON payload for `req`.
pub fn payload(
    req: &AgentRequest,
    agent_params: &Map<String, Value>,
    send_conversation: bool,
) -> Result<Vec<u8>> {
    if req.messages.is_empty() {
        return Err(Error::invalid(
            "messages",
            "messages must contain at least one message",
        ));
    }
    let prompt = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.text())
        .ok_or_else(|| {
            Error::invalid(
                "messages",
                "messages must contain a user message (its text is the agent's prompt)",
            )
        })?;
    let mut body = Map::new();
    body.insert("prompt".into(), Value::String(prompt));
    if send_conversation {
        let messages = serde_json::to_value(&req.messages)
            .map_err(|e| Error::invalid("messages", e.to_string()))?;
        body.insert("messages".into(), messages);
        let system: Vec<String> = req
            .messages
            .iter()
            .filter(|m| m.role == "system" || m.role == "developer")
            .map(|m| m.text())
            .collect();
        if !system.is_empty() {
            body.insert("system_prompt".into(), Value::String(system.join("\n")));
        }
    }
    for (k, v) in agent_params.iter().chain(req.params.iter()) {
        if is_payload_param(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    let bytes = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| Error::invalid("body", e.to_string()))?;
    if bytes.len() > MAX_PAYLOAD {
        return Err(Error::invalid(
            "messages",
            format!(
                "the agent's payload would be {} bytes; AgentCore Runtime takes at most {MAX_PAYLOAD}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use serde_json::json;

    fn req(messages: Vec<Message>, params: Value) -> AgentRequest {
        let mut r = AgentRequest::new(messages);
        r.params = params.as_object().cloned().unwrap_or_default();
        r
    }

    fn body(r: &AgentRequest, extras: Value, conversation: bool) -> Value {
        let extras = extras.as_object().cloned().unwrap_or_default();
        serde_json::from_slice(&payload(r, &extras, conversation).unwrap()).unwrap()
    }

    #[test]
    fn payload_is_the_last_user_text_plus_merged_agent_fields() {
        let r = req(
            vec![
                Message::new("system", "be brief"),
                Message::new("user", "first"),
                Message::new("assistant", "ok"),
                Message::new("user", "second"),
            ],
            json!({"temperature": 0.2, "session_id": "s", "include_trace": true,
                   "tenant": "request", "actor": {"id": 7}}),
        );
        let b = body(
            &r,
            json!({"tenant": "deployment", "region_hint": "eu"}),
            false,
        );
        assert_eq!(
            b,
            json!({"prompt": "second", "tenant": "request", "region_hint": "eu", "actor": {"id": 7}})
        );
    }

    #[test]
    fn send_conversation_adds_messages_and_the_system_prompt() {
        let r = req(
            vec![
                Message::new("system", "be brief"),
                Message::new("user", "hi"),
            ],
            json!({}),
        );
        let b = body(&r, json!({}), true);
        assert_eq!(b["prompt"], "hi");
        assert_eq!(b["system_prompt"], "be brief");
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(b["messages"][1], json!({"role": "user", "content": "hi"}));
    }

    #[test]
    fn a_conversation_without_a_user_message_is_refused() {
        for messages in [vec![], vec![Message::new("system", "x")]] {
            let e = payload(&req(messages, json!({})), &Map::new(), false).unwrap_err();
            assert_eq!(e.param(), Some("messages"));
        }
    }

    #[test]
    fn short_sessions_map_deterministically_to_valid_ones() {
        let a = session_for(&req(vec![], json!({"session_id": "abc"})), &Map::new()).unwrap();
        let b = session_for(&req(vec![], json!({"sessionID": "abc"})), &Map::new()).unwrap();
        let c = session_for(&req(vec![], json!({"session_id": "abd"})), &Map::new()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(SESSION_LEN.contains(&a.len()), "{a}");
        assert!(a.starts_with(DERIVED_PREFIX));
    }

    #[test]
    fn long_sessions_pass_and_missing_ones_are_generated() {
        let long = "x".repeat(40);
        let r = req(vec![], json!({"runtimeSessionId": long}));
        assert_eq!(session_for(&r, &Map::new()).unwrap(), long);
        let fresh = session_for(&req(vec![], json!({})), &Map::new()).unwrap();
        assert!(SESSION_LEN.contains(&fresh.len()));
        assert_ne!(
            fresh,
            session_for(&req(vec![], json!({})), &Map::new()).unwrap()
        );
        let configured = json!({"runtimeSessionId": long})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            session_for(&req(vec![], json!({})), &configured).unwrap(),
            long
        );
    }

    #[test]
    fn invalid_sessions_are_refused_naming_the_field() {
        for s in ["".to_string(), "y".repeat(257), "a\nb".to_string()] {
            let e = session_for(&req(vec![], json!({"session_id": s})), &Map::new()).unwrap_err();
            assert_eq!(e.param(), Some("session_id"), "{s:?}");
        }
    }
}
