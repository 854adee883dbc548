//! The HTTP routes: chat completions, models, health.

use crate::auth;
use crate::error::{ProxyError, Result};
use crate::keys::Caller;
use crate::sse;
use crate::state::{AppState, Gateway};
use agentbridge::params::is_deployment_param;
use agentbridge::{ChatChunk, ChatRequest};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::Instrument;

/// Identifies the caller on API routes: the master key, a virtual key, or (with no master
/// key configured) anyone.
pub async fn require_key(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let caller = match identify(&gw, req.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Runs the rest of the request on the key service's home runtime, which owns the key
/// store's connections (the worker threads' runtimes do not).
pub async fn at_home(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let Some(keys) = &gw.keys else {
        // No key store: nothing to run elsewhere (the handlers answer 403).
        return next.run(req).await;
    };
    match keys.home().spawn(next.run(req)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "request task failed");
            ProxyError::Unavailable("the request could not be completed; retry shortly".into())
                .into_response()
        }
    }
}

async fn identify(gw: &Gateway, headers: &HeaderMap) -> Result<Caller> {
    let Some(master) = gw.master_key.as_ref() else {
        return Ok(Caller::Admin);
    };
    match auth::bearer(headers) {
        None | Some("") => Err(ProxyError::Unauthorized(
            "missing API key: send Authorization: Bearer <key>".into(),
        )),
        Some(k) if auth::same_key(k, master) => Ok(Caller::Admin),
        Some(k) => match &gw.keys {
            Some(keys) => Ok(Caller::Key(keys.authenticate(k).await?)),
            None => Err(ProxyError::Unauthorized("invalid API key".into())),
        },
    }
}

async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ProxyError::BodyTooLarge { limit })
        }
        Err(e) => Err(ProxyError::BadRequest {
            message: format!("could not read the request body: {e}"),
            param: None,
        }),
    }
}

fn bad(message: impl Into<String>, param: Option<&str>) -> ProxyError {
    ProxyError::BadRequest {
        message: message.into(),
        param: param.map(str::to_string),
    }
}

/// Parses a chat request, naming the field at fault.
pub fn parse_chat(bytes: &[u8]) -> Result<ChatRequest> {
    // A well-formed request is parsed straight into its type; anything the checks below
    // would refuse (or that does not parse) takes the slower path that names the field.
    if let Ok(req) = agentbridge::json::from_bytes::<ChatRequest>(bytes)
        && !req.model.is_empty()
        && !req.messages.is_empty()
        && !req.extra.keys().any(|k| is_deployment_param(k))
    {
        return Ok(req);
    }
    parse_chat_naming_faults(bytes)
}

/// The request parsed via a JSON value: slower, but every refusal names its field.
fn parse_chat_naming_faults(bytes: &[u8]) -> Result<ChatRequest> {
    let value: Value = agentbridge::json::from_bytes(bytes)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}"), None))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("request body must be a JSON object", None))?;
    match obj.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        None | Some(Value::Null) => {
            return Err(bad("missing required field: model", Some("model")));
        }
        Some(_) => return Err(bad("model must be a non-empty string", Some("model"))),
    }
    match obj.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(bad(
                "messages must contain at least one message",
                Some("messages"),
            ));
        }
        None | Some(Value::Null) => {
            return Err(bad("missing required field: messages", Some("messages")));
        }
        Some(_) => return Err(bad("messages must be a list of messages", Some("messages"))),
    }
    if let Some(k) = obj.keys().find(|k| is_deployment_param(k)) {
        return Err(bad(
            format!(
                "{k} cannot be set in a request: endpoints, credentials and deployment settings come from the gateway's config"
            ),
            Some(k),
        ));
    }
    serde_path_to_error::deserialize::<_, ChatRequest>(value).map_err(|e| {
        let path = e.path().to_string();
        bad(format!("{path}: {}", e.inner()), Some(&path))
    })
}

// Response header names, parsed at compile time rather than on every insert.
const RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");
const KEY_SPEND: HeaderName = HeaderName::from_static("x-litellm-key-spend");
const SESSION_ID: HeaderName = HeaderName::from_static("x-agentbridge-session-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

fn header(v: impl AsRef<str>) -> Option<HeaderValue> {
    HeaderValue::from_str(v.as_ref()).ok()
}

/// `POST /v1/chat/completions` and `/chat/completions`.
pub async fn chat(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Body,
) -> Result<Response> {
    handle_chat(state, caller, body).await
}

/// The chat route without the router: authenticates, then answers (what `require_key` and
/// [`chat`] do together). The server's fast path for its busiest route.
pub async fn authenticated_chat(state: AppState, headers: &HeaderMap, body: Body) -> Response {
    let caller = match identify(&state.gw, headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    handle_chat(state, caller, body).await.into_response()
}

async fn handle_chat(
    AppState { gw, client }: AppState,
    caller: Caller,
    body: Body,
) -> Result<Response> {
    let permit = Arc::clone(&gw.inflight)
        .try_acquire_owned()
        .map_err(|_| ProxyError::Overloaded(gw.server.max_concurrent_requests))?;
    let bytes = read_body(body, gw.server.max_body_bytes).await?;
    let req = parse_chat(&bytes)?;
    let pool = gw
        .pool(&req.model)
        .ok_or_else(|| ProxyError::ModelNotFound {
            model: req.model.clone(),
            served: gw.model_names(),
        })?;
    let deployment = pool.pick();
    let key = match (&caller, &gw.keys) {
        (Caller::Key(rec), Some(keys)) => {
            keys.admit(rec, &req.model).await?;
            Some((Arc::clone(keys), Arc::clone(rec)))
        }
        _ => None,
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("chat", request_id = %request_id, model = %req.model, stream = req.stream, session = tracing::field::Empty);

    async move {
        if !req.stream {
            let completion = client.complete(&deployment, &req, &req.model).await?;
            tracing::Span::current().record("session", completion.session_id.as_str());
            tracing::info!(
                tokens = completion.usage.total_tokens,
                cost = completion.response_cost,
                "completed"
            );
            // Sized for a typical answer, so the JSON is written without regrowing.
            let mut json = Vec::with_capacity(512 + completion.choices.len() * 256);
            serde_json::to_writer(&mut json, &completion).map_err(|e| {
                ProxyError::Internal(format!("could not write the answer as JSON: {e}"))
            })?;
            let mut r = Response::new(Body::from(json));
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(v) = header(completion.response_cost.to_string()) {
                h.insert(RESPONSE_COST, v);
            }
            if let Some(v) = header(&completion.session_id) {
                h.insert(SESSION_ID, v);
            }
            if let Some(v) = header(&request_id) {
                h.insert(REQUEST_ID, v);
            }
            if let Some((keys, rec)) = &key {
                let outcome = agentbridge::answer::Outcome {
                    usage: completion.usage,
                    cost: completion.response_cost,
                };
                let spend = keys.charge(rec, &req.model, &request_id, outcome).await;
                if let Some(v) = header(spend.to_string()) {
                    r.headers_mut().insert(KEY_SPEND, v);
                }
            }
            drop(permit);
            return Ok(r);
        }
        let mut chunks = client.stream(&deployment, &req, &req.model).await?;
        let session = chunks.session_id().to_string();
        tracing::Span::current().record("session", session.as_str());
        // Wait for the first chunk: an exception before any output is still an HTTP error
        // (and still retryable by the client), not an in-band event.
        let first: Option<agentbridge::Result<ChatChunk>> = chunks.next().await;
        let first = match first {
            Some(Err(e)) => return Err(e.into()),
            other => other,
        };
        let outcome = chunks.outcome_handle();
        let stream = futures::stream::iter(first).chain(chunks);
        let charge = key.map(|(keys, rec)| ChargeOnEnd {
            keys,
            rec,
            model: req.model.clone(),
            request_id: request_id.clone(),
            outcome,
        });
        let body = sse::body(stream).map(move |b| {
            let _held = (&permit, &charge);
            b
        });
        let mut r = Response::new(Body::from_stream(body));
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
        if let Some(v) = header(&session) {
            h.insert(SESSION_ID, v);
        }
        if let Some(v) = header(&request_id) {
            h.insert(REQUEST_ID, v);
        }
        Ok(r)
    }
    .instrument(span)
    .await
}

/// Charges a key for a streamed answer when its body is dropped (finished, failed or
/// cancelled), with the usage the agent reported up to then.
struct ChargeOnEnd {
    keys: Arc<crate::keys::Keys>,
    rec: Arc<crate::keys::record::KeyRecord>,
    model: String,
    request_id: String,
    outcome: Arc<std::sync::Mutex<Option<agentbridge::answer::Outcome>>>,
}

impl Drop for ChargeOnEnd {
    fn drop(&mut self) {
        let Some(outcome) = self.outcome.lock().ok().and_then(|o| *o) else {
            return;
        };
        let (keys, rec, model, id) = (
            Arc::clone(&self.keys),
            Arc::clone(&self.rec),
            std::mem::take(&mut self.model),
            std::mem::take(&mut self.request_id),
        );
        let home = keys.home().clone();
        home.spawn(async move {
            keys.charge(&rec, &model, &id, outcome).await;
        });
    }
}

/// `GET /v1/models` and `/models`.
pub async fn models(State(gw): State<Arc<Gateway>>) -> Response {
    let data: Vec<Value> = gw
        .model_names()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "agentbridge"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /health/liveliness`.
pub async fn liveliness() -> Response {
    axum::Json(json!("I'm alive!")).into_response()
}

/// `GET /health/readiness`: ready while it serves; `db` and `redis` say whether the key
/// store's dependencies answered their last call (LiteLLM's `db` field), `status` is
/// `degraded` while one does not (requests are still served: `docs/reliability.md`).
pub async fn readiness(State(gw): State<Arc<Gateway>>) -> Response {
    let mut body = json!({"status": "healthy", "models": gw.models.len(), "version": env!("CARGO_PKG_VERSION")});
    if let Some(keys) = &gw.keys {
        let h = keys.health();
        let state = |up: bool| if up { "connected" } else { "unreachable" };
        body["db"] = json!(state(h.database));
        body["redis"] = json!(h.redis.map_or("not configured", state));
        body["spend_buffered"] = json!(h.spend_buffered);
        if !h.database || h.redis == Some(false) {
            body["status"] = json!("degraded");
        }
    }
    axum::Json(body).into_response()
}

/// Unknown routes.
pub async fn fallback(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let _ = headers;
    ProxyError::NotFound(uri.path().to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn parse_errors_name_the_field() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("{", None, "not valid JSON"),
            ("[]", None, "JSON object"),
            (
                r#"{"messages": [{"role": "user", "content": "x"}]}"#,
                Some("model"),
                "model",
            ),
            (r#"{"model": "m"}"#, Some("messages"), "messages"),
            (
                r#"{"model": "m", "messages": []}"#,
                Some("messages"),
                "at least one",
            ),
            (
                r#"{"model": "m", "messages": "hi"}"#,
                Some("messages"),
                "list",
            ),
            (
                r#"{"model": "m", "messages": [{"content": "x"}]}"#,
                Some("messages[0]"),
                "role",
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "aws_access_key_id": "AK"}"#,
                Some("aws_access_key_id"),
                "config",
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "api_base": "http://169.254.169.254"}"#,
                Some("api_base"),
                "config",
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}"#,
                Some("stream"),
                "stream",
            ),
        ];
        for (body, param, needle) in cases {
            let e = parse_chat(body.as_bytes()).unwrap_err();
            let j = e.body();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(j["error"]["param"].as_str(), *param, "{body}: {j}");
            assert!(
                j["error"]["message"].as_str().unwrap().contains(needle),
                "{body}: {j}"
            );
        }
    }

    #[test]
    fn the_direct_parse_agrees_with_the_field_naming_one() {
        let bodies = [
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#,
            r#"{"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "x"}]}], "stream": true, "stream_options": {"include_usage": true}}"#,
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": null, "temperature": 0.2, "sessionState": {"sessionAttributes": {"a": "b"}}, "memoryId": "m1", "n": 18446744073709551615}"#,
            r#"{"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c", "content": "r"}]}"#,
            r#"{"model": "m", "model": "m2", "messages": [{"role": "user", "content": "x"}]}"#,
        ];
        for body in bodies {
            let fast = serde_json::to_value(parse_chat(body.as_bytes()).unwrap()).unwrap();
            let slow =
                serde_json::to_value(parse_chat_naming_faults(body.as_bytes()).unwrap()).unwrap();
            assert_eq!(fast, slow, "{body}");
        }
    }
}
