//! What tests can read from the emulator: counters (`/_emulator/stats`) and the recent
//! InvokeAgent requests (`/_emulator/requests`, authorization header left out).

use crate::server::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many requests are kept.
pub const RECORDED: usize = 200;

/// Counters tests read from `/_emulator/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// InvokeAgent calls received.
    pub requests: AtomicU64,
    /// Answers whose body was sent completely.
    pub completed: AtomicU64,
    /// Answers whose connection the client closed before the end.
    pub cancelled: AtomicU64,
    /// Answers being sent now.
    pub open: AtomicU64,
}

pub fn record(
    st: &AppState,
    headers: &HeaderMap,
    agent: &str,
    alias: &str,
    session: &str,
    body: &Value,
) {
    let signed_headers: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| *k != "authorization")
        .collect();
    let entry = json!({"agentId": agent, "agentAliasId": alias, "sessionId": session, "headers": signed_headers, "body": body});
    if let Ok(mut r) = st.recorded.lock() {
        if r.len() >= RECORDED {
            r.pop_front();
        }
        r.push_back(entry);
    }
}

pub async fn stats(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let s = &st.stats;
    axum::Json(json!({
        "requests": s.requests.load(Ordering::Relaxed),
        "completed": s.completed.load(Ordering::Relaxed),
        "cancelled": s.cancelled.load(Ordering::Relaxed),
        "open": s.open.load(Ordering::Relaxed),
    }))
}

pub async fn recorded(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let list: Vec<Value> = st
        .recorded
        .lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default();
    axum::Json(Value::Array(list))
}

pub async fn clear_recorded(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    if let Ok(mut r) = st.recorded.lock() {
        r.clear();
    }
    StatusCode::NO_CONTENT
}
