//! The emulator's HTTP server: InvokeAgent, plus `/_emulator/*` endpoints that tests read.

use crate::agent::{self, Call, Step};
use crate::script::Script;
use crate::sigv4::{self, Keyring, SignedRequest};
use crate::{EmulatorConfig, validate};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RECORDED: usize = 200;
const MAX_SESSIONS: usize = 100_000;

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

#[derive(Debug, Default)]
struct Session {
    user_turns: Vec<String>,
    pending_invocation: Option<String>,
    calls: u32,
}

/// Shared state of the emulator.
pub struct AppState {
    config: EmulatorConfig,
    keys: Keyring,
    sessions: Mutex<HashMap<String, Session>>,
    recorded: Mutex<VecDeque<Value>>,
    stats: Arc<Stats>,
    canned: Option<[Bytes; 2]>,
}

/// Builds the router.
pub fn app(config: EmulatorConfig) -> Router {
    let mut keys = Keyring::default();
    for (ak, sk, tok) in &config.credentials {
        keys.add(ak, sk, tok.as_deref());
    }
    let canned = config.canned.then(canned_bodies);
    let state = Arc::new(AppState {
        config,
        keys,
        sessions: Mutex::new(HashMap::new()),
        recorded: Mutex::new(VecDeque::new()),
        stats: Arc::new(Stats::default()),
        canned,
    });
    Router::new()
        .route(
            "/agents/{agent_id}/agentAliases/{alias_id}/sessions/{session_id}/text",
            post(invoke),
        )
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/requests", get(recorded).delete(clear_recorded))
        .route("/_emulator/health", get(|| async { "ok" }))
        .with_state(state)
}

fn canned_bodies() -> [Bytes; 2] {
    [false, true].map(|stream| {
        let call = Call {
            agent_id: "CANNED".into(),
            alias_id: "CANNED".into(),
            session_id: "canned".into(),
            input: "canned".into(),
            stream_final: stream,
            invocation_id: "canned".into(),
            ..Default::default()
        };
        let (steps, _) = agent::respond(&call);
        let mut out = Vec::new();
        for s in steps {
            if let Step::Send(b) = s {
                out.extend(b);
            }
        }
        Bytes::from(out)
    })
}

fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (
        status,
        [("content-type", "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response();
    if let Ok(v) = format!("{code}:http://internal.amazon.com/coral/com.amazon.bedrock/").parse() {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    if let Ok(v) = uuid_like().parse() {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

fn uuid_like() -> String {
    let n: u128 = rand_u128();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let s = std::collections::hash_map::RandomState::new();
    let mut a = s.build_hasher();
    a.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    let hi = a.finish();
    a.write_u64(hi);
    ((hi as u128) << 64) | a.finish() as u128
}

/// The status the API model gives an error name.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "ThrottlingException" => StatusCode::TOO_MANY_REQUESTS,
        "AccessDeniedException" => StatusCode::FORBIDDEN,
        "ResourceNotFoundException" => StatusCode::NOT_FOUND,
        "ValidationException" | "ServiceQuotaExceededException" => StatusCode::BAD_REQUEST,
        "DependencyFailedException" => StatusCode::FAILED_DEPENDENCY,
        "BadGatewayException" => StatusCode::BAD_GATEWAY,
        "ModelNotReadyException" => StatusCode::FAILED_DEPENDENCY,
        "ConflictException" => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn invoke(
    State(st): State<Arc<AppState>>,
    Path((agent_id, alias_id, session_id)): Path<(String, String, String)>,
    req: axum::extract::Request,
) -> Response {
    st.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 30 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return aws_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                "request body too large",
            );
        }
    };
    if st.config.verify_signatures {
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
            body: &body,
        };
        if let Err(e) = sigv4::verify(&signed, &st.keys, chrono::Utc::now()) {
            let status = if e.code == "IncompleteSignatureException" {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::FORBIDDEN
            };
            return aws_error(status, e.code, &e.message);
        }
    }
    if !validate::id(&agent_id) || !validate::id(&alias_id) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "agentId and agentAliasId must match ^[0-9a-zA-Z]+$ with length 1-10",
        );
    }
    if !validate::session(&session_id) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "sessionId must match ^[0-9a-zA-Z._:-]+$ with length 2-100",
        );
    }
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                &format!("body is not JSON: {e}"),
            );
        }
    };
    if let Err(m) = validate::body(&json) {
        return aws_error(StatusCode::BAD_REQUEST, "ValidationException", &m);
    }
    let stream_final =
        json.pointer("/streamingConfigurations/streamFinalResponse") == Some(&Value::Bool(true));
    let memory_id = json
        .get("memoryId")
        .and_then(Value::as_str)
        .map(str::to_string);

    if let Some(canned) = &st.canned {
        return event_stream_response(
            &st,
            &session_id,
            memory_id.as_deref(),
            vec![Step::Send(canned[stream_final as usize].to_vec())],
        );
    }

    record(
        &st,
        &parts.headers,
        &agent_id,
        &alias_id,
        &session_id,
        &json,
    );
    let input = json
        .get("inputText")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut script = Script::parse(&input);
    if let Some(extra) = json
        .pointer("/sessionState/sessionAttributes/emulate")
        .and_then(Value::as_str)
    {
        let more = Script::parse(
            &extra
                .split(',')
                .map(|t| format!("emulate:{}", t.trim()))
                .collect::<Vec<_>>()
                .join(" "),
        );
        script = merge(script, more);
    }
    st.config
        .faults
        .inject(st.stats.requests.load(Ordering::Relaxed), &mut script);
    if let Some(code) = &script.http_error {
        return aws_error(
            status_of(code),
            code,
            &format!("Emulated {code} before the stream"),
        );
    }

    let tool_results = json
        .pointer("/sessionState/returnControlInvocationResults")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|r| {
                    let inner = r
                        .get("functionResult")
                        .or_else(|| r.get("apiResult"))
                        .cloned()
                        .unwrap_or_default();
                    inner
                        .get("responseBody")
                        .and_then(Value::as_object)
                        .and_then(|m| m.values().next())
                        .and_then(|c| c.get("body"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                })
                .collect::<Vec<_>>()
        });

    let mut earlier: Vec<String> = json
        .pointer("/sessionState/conversationHistory/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .filter_map(|m| {
            m.pointer("/content/0/text")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    {
        let Ok(mut sessions) = st.sessions.lock() else {
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "emulator state poisoned",
            );
        };
        let s = sessions.entry(session_id.clone()).or_default();
        s.calls += 1;
        if script.fail_first.is_some_and(|n| s.calls <= n) {
            return aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Emulated throttling (fail_first)",
            );
        }
        if tool_results.is_some() {
            let given = json
                .pointer("/sessionState/invocationId")
                .and_then(Value::as_str);
            if given.is_none() || given != s.pending_invocation.as_deref() {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "sessionState.invocationId does not match a pending return of control in this session",
                );
            }
            s.pending_invocation = None;
        }
        for t in &s.user_turns {
            if !earlier.contains(t) {
                earlier.push(t.clone());
            }
        }
    }

    let call = Call {
        agent_id,
        alias_id,
        session_id: session_id.clone(),
        input: input.clone(),
        earlier_user_turns: earlier,
        stream_final,
        tool_results,
        script,
        invocation_id: uuid_like(),
    };
    let (steps, outcome) = agent::respond(&call);
    if let Ok(mut sessions) = st.sessions.lock() {
        if sessions.len() >= MAX_SESSIONS {
            sessions.clear();
        }
        let s = sessions.entry(session_id.clone()).or_default();
        if !input.is_empty() {
            s.user_turns.push(input);
        }
        if outcome.pending_invocation.is_some() {
            s.pending_invocation = outcome.pending_invocation;
        }
    }
    event_stream_response(&st, &session_id, memory_id.as_deref(), steps)
}

fn merge(a: Script, b: Script) -> Script {
    Script {
        slow_ms: a.slow_ms.max(b.slow_ms),
        return_control: a.return_control.or(b.return_control),
        citations: a.citations || b.citations,
        files: a.files || b.files,
        guardrail: a.guardrail || b.guardrail,
        http_error: a.http_error.or(b.http_error),
        exception: a.exception.or(b.exception),
        stall: a.stall || b.stall,
        corrupt: a.corrupt || b.corrupt,
        truncate: a.truncate || b.truncate,
        big: a.big.or(b.big),
        unicode: a.unicode || b.unicode,
        model: a.model.or(b.model),
        fail_first: a.fail_first.or(b.fail_first),
    }
}

fn record(
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

/// Counts an answer as cancelled if its body is dropped before the end.
struct StreamGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl StreamGuard {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        if self.finished {
            self.stats.completed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("client closed the connection before the end of the answer");
        }
    }
}

fn event_stream_response(
    st: &AppState,
    session: &str,
    memory: Option<&str>,
    steps: Vec<Step>,
) -> Response {
    st.stats.open.fetch_add(1, Ordering::Relaxed);
    let guard = StreamGuard {
        stats: Arc::clone(&st.stats),
        finished: false,
    };
    let body = if steps.iter().all(|s| matches!(s, Step::Send(_))) {
        let mut all = Vec::new();
        for s in steps {
            if let Step::Send(b) = s {
                all.extend(b);
            }
        }
        let mut guard = guard;
        guard.finish();
        Body::from(all)
    } else {
        let queue: VecDeque<Step> = steps.into();
        Body::from_stream(futures::stream::unfold(
            (queue, guard),
            |(mut q, mut guard)| async move {
                loop {
                    match q.pop_front() {
                        None => {
                            guard.finish();
                            return None;
                        }
                        Some(Step::SleepMs(ms)) => {
                            tokio::time::sleep(Duration::from_millis(ms)).await
                        }
                        Some(Step::Stall) => futures::future::pending::<()>().await,
                        Some(Step::Send(b)) => {
                            return Some((Ok::<_, std::io::Error>(Bytes::from(b)), (q, guard)));
                        }
                    }
                }
            },
        ))
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    h.insert(
        "x-amzn-bedrock-agent-content-type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = session.parse() {
        h.insert("x-amz-bedrock-agent-session-id", v);
    }
    if let Some(Ok(v)) = memory.map(str::parse) {
        h.insert("x-amz-bedrock-agent-memory-id", v);
    }
    if let Ok(v) = uuid_like().parse() {
        h.insert("x-amzn-requestid", v);
    }
    r
}

async fn stats(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let s = &st.stats;
    axum::Json(json!({
        "requests": s.requests.load(Ordering::Relaxed),
        "completed": s.completed.load(Ordering::Relaxed),
        "cancelled": s.cancelled.load(Ordering::Relaxed),
        "open": s.open.load(Ordering::Relaxed),
    }))
}

async fn recorded(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let list: Vec<Value> = st
        .recorded
        .lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default();
    axum::Json(Value::Array(list))
}

async fn clear_recorded(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    if let Ok(mut r) = st.recorded.lock() {
        r.clear();
    }
    StatusCode::NO_CONTENT
}
