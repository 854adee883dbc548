//! The emulator's HTTP server: InvokeAgent, plus `/_emulator/*` endpoints that tests read.

use crate::agent::{self, Call, Step};
use crate::observe::{self, Stats};
use crate::script::Script;
use crate::sigv4::{self, Keyring, SignedRequest};
use crate::wire::{aws_error, event_stream_response, status_of, uuid_like};
use crate::{EmulatorConfig, validate};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

const MAX_SESSIONS: usize = 100_000;

/// What the emulator remembers of one agent session.
#[derive(Debug, Default)]
pub(crate) struct Session {
    user_turns: Vec<String>,
    pending_invocation: Option<String>,
    calls: u32,
}

/// Shared state of the emulator.
pub struct AppState {
    pub(crate) config: EmulatorConfig,
    pub(crate) keys: Keyring,
    pub(crate) sessions: Mutex<HashMap<String, Session>>,
    pub(crate) recorded: Mutex<VecDeque<Value>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) canned: Option<[Bytes; 2]>,
}

/// Builds the router.
pub fn app(config: EmulatorConfig) -> Router {
    let mut keys = Keyring::default();
    for (ak, sk, tok) in &config.credentials {
        keys.add(ak, sk, tok.as_deref());
    }
    let canned = config.canned.then(canned_bodies);
    let agentcore = crate::agentcore::router(&config);
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
        .route("/_emulator/stats", get(observe::stats))
        .route(
            "/_emulator/requests",
            get(observe::recorded).delete(observe::clear_recorded),
        )
        .route("/_emulator/health", get(|| async { "ok" }))
        .with_state(state)
        .merge(agentcore)
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
            &st.stats,
            &session_id,
            memory_id.as_deref(),
            vec![Step::Send(canned[stream_final as usize].to_vec())],
        );
    }

    observe::record(
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
        script = script.merge(more);
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
    event_stream_response(&st.stats, &session_id, memory_id.as_deref(), steps)
}
