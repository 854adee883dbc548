//! `InvokeAgentRuntime`: authentication, the model's checks, scripted errors, then the
//! answer, scripted or forwarded.

use super::auth::{Authenticator, Method};
use super::errors::{AgentCoreError, ErrorKind};
use super::script::Script;
use super::target::{self, ECHOED_HEADERS, SESSION_HEADER, USER_HEADER};
use super::{MAX_PAYLOAD, State, answer, forward, observe};
use crate::agent::Step;
use axum::body::{Body, Bytes};
use axum::extract::{self, Path};
use axum::http::{HeaderValue, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

fn query_member(parts: &Parts, name: &str) -> Option<String> {
    parts.uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The region in a SigV4 credential scope, for runtimes named by ID.
fn signing_region(parts: &Parts) -> String {
    parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("us-east-1")
        .to_string()
}

/// The prompt text of a payload: `prompt`, `input` or `inputText` if a string, else the JSON.
fn prompt_of(payload: &[u8]) -> String {
    match serde_json::from_slice::<Value>(payload) {
        Ok(v) => ["prompt", "input", "inputText", "message"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| v.to_string()),
        Err(_) => String::from_utf8_lossy(payload).into_owned(),
    }
}

/// Handles one call.
pub(super) async fn invoke(
    extract::State(st): extract::State<Arc<State>>,
    Path(arn_or_id): Path<String>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(payload) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        return AgentCoreError::invalid(
            "payload",
            format!("1 validation error detected: Value at 'payload' failed to satisfy constraint: Member must have length less than or equal to {MAX_PAYLOAD}"),
        )
        .into_response();
    };
    let parsed = target::runtime(
        &arn_or_id,
        query_member(&parts, "accountId").as_deref(),
        &signing_region(&parts),
    );
    let oauth = parsed.as_ref().is_ok_and(|r| st.config.is_oauth(r));
    let authn = Authenticator {
        keys: &st.keys,
        verify_signatures: st.verify_signatures,
        bearer_tokens: &st.config.bearer_tokens,
    };
    let method = match authn.check(&parts, &payload, oauth) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    match checked(&st, &parts, parsed, method, payload).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn checked(
    st: &State,
    parts: &Parts,
    parsed: Result<target::Runtime, AgentCoreError>,
    method: Method,
    payload: Bytes,
) -> Result<Response, AgentCoreError> {
    let runtime = parsed?;
    target::bounded_headers(&parts.headers)?;
    let session = target::session(&parts.headers)?;
    let user = parts
        .headers
        .get(USER_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !st.config.accounts.contains(&runtime.account) {
        return Err(AgentCoreError::new(
            ErrorKind::ResourceNotFound,
            format!("No agent runtime found with ARN {}", runtime.arn),
        ));
    }
    let qualifier = target::qualifier(
        query_member(parts, "qualifier").as_deref(),
        &st.config.endpoints,
        &runtime,
    )?;
    let forward_to = st.config.forward_for(&runtime.id).map(str::to_string);
    let request_id = crate::wire::uuid_like();
    let mut entry = json!({
        "runtimeArn": runtime.arn, "runtimeId": runtime.id, "qualifier": qualifier,
        "sessionId": session, "userId": user, "auth": method.as_str(),
        "mode": if forward_to.is_some() { "forward" } else { "scripted" },
        "requestId": request_id,
        "headers": observe::headers(&parts.headers), "payload": observe::payload(&payload),
    });
    let result = answer_call(
        st,
        parts,
        &runtime,
        &session,
        &request_id,
        forward_to,
        payload,
    )
    .await;
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.kind.status().as_u16(),
    };
    entry["status"] = json!(status);
    observe::record(st, entry);
    let mut r = result?;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&session) {
        h.insert(SESSION_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    for name in ECHOED_HEADERS {
        if let Some(v) = parts.headers.get(name) {
            h.insert(name, v.clone());
        }
    }
    Ok(r)
}

async fn answer_call(
    st: &State,
    parts: &Parts,
    runtime: &target::Runtime,
    session: &str,
    request_id: &str,
    forward_to: Option<String>,
    payload: Bytes,
) -> Result<Response, AgentCoreError> {
    let script = Script::from_payload(&payload);
    if let Some(name) = &script.unknown_error {
        return Err(AgentCoreError::invalid(
            "payload",
            format!("emulate:error={name}: the bedrock-agentcore model has no such error"),
        ));
    }
    let key = format!("{}#{session}", runtime.arn);
    let (attempt, earlier, pinged) = {
        let Ok(mut sessions) = st.sessions.lock() else {
            return Err(AgentCoreError::new(
                ErrorKind::InternalServer,
                "emulator state poisoned",
            ));
        };
        if sessions.len() >= super::MAX_SESSIONS {
            sessions.clear();
        }
        let s = sessions.entry(key.clone()).or_default();
        s.calls += 1;
        (s.calls, s.prompts.clone(), s.pinged)
    };
    if attempt <= script.retryable_conflicts {
        return Err(AgentCoreError::new(
            ErrorKind::RetryableConflict,
            format!(
                "Session {session} is busy with another invocation (emulated, attempt {attempt}); retry with backoff"
            ),
        ));
    }
    if let Some(kind) = script.error {
        return Err(AgentCoreError::new(
            kind,
            format!("Emulated {}", kind.name()),
        ));
    }
    if let Some(url) = forward_to {
        if !pinged {
            forward::ping(&st.client, &url).await?;
            if let Ok(mut sessions) = st.sessions.lock() {
                sessions.entry(key).or_default().pinged = true;
            }
        }
        let resp = forward::invoke(
            &st.client,
            &url,
            &parts.headers,
            session,
            request_id,
            payload,
        )
        .await?;
        let (head, body) = resp.into_parts();
        let mut r = Response::new(body);
        *r.status_mut() = head.status;
        if let Some(ct) = head.headers.get("content-type") {
            r.headers_mut().insert("content-type", ct.clone());
        }
        return Ok(r);
    }
    let prompt = prompt_of(&payload);
    let text = if prompt.to_lowercase().contains("what did i say") {
        if earlier.is_empty() {
            "You have not said anything before in this session.".to_string()
        } else {
            let quoted: Vec<String> = earlier.iter().map(|t| format!("\"{t}\"")).collect();
            format!("You said: {}", quoted.join("; "))
        }
    } else {
        format!(
            "Emulated AgentCore runtime {} received: {prompt}",
            runtime.id
        )
    };
    if let Ok(mut sessions) = st.sessions.lock() {
        sessions.entry(key).or_default().prompts.push(prompt);
    }
    let a = answer::build(&script, &text);
    let mut r = Response::new(steps_body(a.steps));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(a.content_type));
    Ok(r)
}

/// A body that sends the steps in order, sleeping where asked.
fn steps_body(steps: Vec<Step>) -> Body {
    if steps.iter().all(|s| matches!(s, Step::Send(_))) {
        let all: Vec<u8> = steps
            .into_iter()
            .flat_map(|s| match s {
                Step::Send(b) => b,
                _ => Vec::new(),
            })
            .collect();
        return Body::from(all);
    }
    let queue: VecDeque<Step> = steps.into();
    Body::from_stream(futures::stream::unfold(queue, |mut q| async move {
        loop {
            match q.pop_front()? {
                Step::SleepMs(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Step::Stall => futures::future::pending::<()>().await,
                Step::Send(b) => return Some((Ok::<_, std::io::Error>(Bytes::from(b)), q)),
            }
        }
    }))
}
