//! The HTTP routes other than the doors' own logic: authentication, body limits, models,
//! health.

use crate::auth;
use crate::doors;
use crate::error::{ProxyError, Result};
use crate::keys::Caller;
use crate::state::{AppState, Gateway};
use agentbridge::canonical::CallContext;
use agentbridge::params::is_deployment_param;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;

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

/// The caller: the master key, a virtual key, or (no master key configured) anyone.
pub async fn identify(gw: &Gateway, headers: &HeaderMap) -> Result<Caller> {
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

/// The request body, up to `limit` bytes (413 beyond).
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes> {
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

/// Refuses deployment settings (endpoints, credentials, timeouts, prices) in a request body,
/// naming the first one found. Every door calls it.
pub fn refuse_deployment_params(obj: &serde_json::Map<String, Value>) -> Result<()> {
    match obj.keys().find(|k| is_deployment_param(k)) {
        None => Ok(()),
        Some(k) => Err(ProxyError::BadRequest {
            message: format!(
                "{k} cannot be set in a request: endpoints, credentials and deployment settings come from the gateway's config"
            ),
            param: Some(k.clone()),
        }),
    }
}

/// What a target may forward from the client's request: W3C trace context, the end user's
/// own token from the header the model's deployments name (`user_token_header`), and the
/// client headers the model forwards ([`forwarded_headers`]).
pub fn call_context(headers: &HeaderMap, pool: &crate::state::Pool) -> CallContext {
    // Names made once: a `&str` name is parsed and validated on every lookup.
    const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
    const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
    fn text<K: axum::http::header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<String> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    let user_token = pool.user_token_header().and_then(|name| {
        let v = text(headers, name)?;
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(&v)
            .trim();
        (!token.is_empty()).then(|| SecretString::from(token.to_string()))
    });
    let forwarded = if pool.forwards_client_headers {
        forwarded_headers(headers, pool.user_token_header())
    } else {
        Vec::new()
    };
    CallContext {
        traceparent: text(headers, TRACEPARENT),
        tracestate: text(headers, TRACESTATE),
        baggage: text(headers, BAGGAGE),
        user_token,
        forwarded,
    }
}

/// The client headers passed on to the agent by a model with
/// `forward_client_headers_to_llm_api` (LiteLLM's rule: every `x-` header but
/// `x-stainless-*`), less what must never leave the gateway or could change the call: the
/// gateway's credentials (`x-api-key`, `x-litellm-*`) and the end user's token header,
/// the gateway's own `x-agentbridge-*`, and the names AWS reserves (`x-amz-*`, used by
/// SigV4, and `x-amzn-*`, such as the runtime's session and user ids) except AgentCore's
/// custom prefix `x-amzn-bedrock-agentcore-runtime-custom-`.
pub fn forwarded_headers(
    headers: &HeaderMap,
    user_token_header: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    const CUSTOM: &str = "x-amzn-bedrock-agentcore-runtime-custom-";
    let passed = |name: &str| {
        name.starts_with("x-")
            && !name.starts_with("x-stainless")
            && !name.starts_with("x-litellm-")
            && !name.starts_with("x-agentbridge-")
            && !name.starts_with("x-amz-")
            && (!name.starts_with("x-amzn-") || name.starts_with(CUSTOM))
            && name != "x-api-key"
            && Some(name) != user_token_header
    };
    headers
        .iter()
        .filter(|(k, _)| passed(k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `POST /v1/chat/completions` and `/chat/completions`, behind the router's auth.
pub async fn chat(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    doors::serve_as::<doors::chat::Chat>(state, caller, headers, body).await
}

/// `POST /v1/responses` and `/responses`, behind the router's auth.
pub async fn responses(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    doors::serve_as::<doors::responses::Responses>(state, caller, headers, body).await
}

/// `POST /v1/messages`: authenticates itself, so that a refusal is in Anthropic's shape.
pub async fn messages(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    doors::serve::<doors::messages::Messages>(state, headers, body).await
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

/// `GET /health`: each deployment's state (healthy, or cooling down until when; its last
/// error), from what the router saw; no agent is called.
pub async fn health(State(gw): State<Arc<Gateway>>) -> Response {
    axum::Json(gw.router.report(&gw.models)).into_response()
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

    #[test]
    fn forwarded_headers_are_the_clients_x_headers_less_credentials_and_reserved_names() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-tenant", "acme"),
            ("X-Amzn-Bedrock-AgentCore-Runtime-Custom-Region", "eu"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-request-id", "r1"),
            ("x-request-id", "r2"),
            // Never forwarded:
            ("authorization", "Bearer sk-gateway"),
            ("x-api-key", "sk-gateway"),
            ("x-litellm-api-key", "sk-gateway"),
            ("x-litellm-timeout", "9"),
            ("x-user-token", "end-user-secret"),
            ("x-agentbridge-session-id", "s"),
            ("x-amz-date", "20260101T000000Z"),
            ("x-amz-security-token", "t"),
            ("x-amzn-bedrock-agentcore-runtime-user-id", "admin"),
            (
                "x-amzn-bedrock-agentcore-runtime-session-id",
                "another-users-session-0123456789abc",
            ),
            ("x-amzn-trace-id", "Root=1"),
            ("x-stainless-lang", "python"),
            ("content-type", "application/json"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ] {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        let got: Vec<(String, String)> = forwarded_headers(&h, Some("x-user-token"))
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let want = [
            ("x-tenant", "acme"),
            ("x-amzn-bedrock-agentcore-runtime-custom-region", "eu"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-request-id", "r1"),
            ("x-request-id", "r2"),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
        );
        assert!(
            forwarded_headers(&h, None)
                .iter()
                .any(|(k, _)| k == "x-user-token")
        );
    }
}
