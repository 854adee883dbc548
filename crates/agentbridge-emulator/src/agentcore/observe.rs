//! What tests read of the AgentCore side: the recent `InvokeAgentRuntime` calls
//! (`GET /_emulator/agentcore/invocations`, cleared by `DELETE`), each with the runtime,
//! endpoint, session, user, how it authenticated, the trace-context and custom headers
//! received, the payload, and the status answered. The `authorization` header is never kept.

use super::State;
use axum::extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How many calls are kept.
pub const RECORDED: usize = 200;

/// Header values recorded (besides the custom `x-amzn-bedrock-agentcore-runtime-custom-*`).
pub const RECORDED_HEADERS: [&str; 8] = [
    "traceparent",
    "tracestate",
    "baggage",
    "x-amzn-trace-id",
    "content-type",
    "accept",
    "mcp-session-id",
    "user-agent",
];

/// The headers worth recording, by lower-case name.
pub fn headers(h: &HeaderMap) -> Value {
    let mut m = Map::new();
    for (k, v) in h {
        let k = k.as_str();
        if RECORDED_HEADERS.contains(&k) || k.starts_with(super::target::CUSTOM_HEADER_PREFIX) {
            m.insert(
                k.to_string(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            );
        }
    }
    Value::Object(m)
}

/// The payload as recorded: its JSON, or its size when it is not JSON.
pub fn payload(p: &[u8]) -> Value {
    serde_json::from_slice(p).unwrap_or_else(|_| json!({ "nonJsonBytes": p.len() }))
}

/// Keeps one call's record.
pub fn record(st: &State, entry: Value) {
    if let Ok(mut r) = st.recorded.lock() {
        if r.len() >= RECORDED {
            r.pop_front();
        }
        r.push_back(entry);
    }
}

/// `GET /_emulator/agentcore/invocations`.
pub async fn list(extract::State(st): extract::State<Arc<State>>) -> impl IntoResponse {
    let list: Vec<Value> = st
        .recorded
        .lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default();
    axum::Json(Value::Array(list))
}

/// `DELETE /_emulator/agentcore/invocations`.
pub async fn clear(extract::State(st): extract::State<Arc<State>>) -> impl IntoResponse {
    if let Ok(mut r) = st.recorded.lock() {
        r.clear();
    }
    StatusCode::NO_CONTENT
}
