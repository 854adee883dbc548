//! Forward mode: the call goes to a local agent process speaking AgentCore's container
//! contract (`GET /ping`, `POST /invocations` on port 8080 by default), and its answer
//! (status, content type, body as it arrives) comes back as AWS relays it. An agent that
//! answers with an error status is reported as AWS does, as `RuntimeClientError` (424).
//! The first call of each session checks `/ping` first, as AgentCore waits for a new
//! session's instance to report `Healthy` before invoking it; an agent that cannot be reached
//! or is unhealthy is also a `RuntimeClientError` (the message, starting `emulator:`, is the
//! emulator's own).

use super::errors::{AgentCoreError, ErrorKind};
use super::target::{CUSTOM_HEADER_PREFIX, REQUEST_ID_HEADER, SESSION_HEADER};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Where an agent runs when none is given: the container contract's port.
pub const DEFAULT_AGENT_URL: &str = "http://127.0.0.1:8080";
/// How long `/ping` may take.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the agent may take to start answering (AgentCore's synchronous limit, 15 min).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The HTTP client used to reach agents.
pub type AgentClient = Client<HttpConnector, Body>;

/// A client for plain-HTTP loopback agents.
pub fn client() -> AgentClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Request headers passed to the agent: the contract's, the trace context, and the
/// allow-listed custom ones.
pub fn passed_header(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "accept"
            | SESSION_HEADER
            | "traceparent"
            | "tracestate"
            | "baggage"
            | "x-amzn-trace-id"
    ) || name.starts_with(CUSTOM_HEADER_PREFIX)
        || name.starts_with("mcp-")
}

fn url(base: &str, path: &str) -> Result<Uri, AgentCoreError> {
    format!("{}{path}", base.trim_end_matches('/'))
        .parse()
        .map_err(|_| {
            AgentCoreError::new(
                ErrorKind::InternalServer,
                format!("emulator: bad agent URL {base:?}"),
            )
        })
}

fn unreachable(base: &str, what: &str) -> AgentCoreError {
    AgentCoreError::new(
        ErrorKind::RuntimeClientError,
        format!("emulator: the agent at {base} {what}"),
    )
}

/// Checks the agent's health (`GET /ping` answers 200 with `Healthy` or `HealthyBusy`).
pub async fn ping(client: &AgentClient, base: &str) -> Result<(), AgentCoreError> {
    let req = Request::builder()
        .method(Method::GET)
        .uri(url(base, "/ping")?)
        .body(Body::empty())
        .map_err(|e| AgentCoreError::new(ErrorKind::InternalServer, e.to_string()))?;
    let resp = tokio::time::timeout(PING_TIMEOUT, client.request(req))
        .await
        .map_err(|_| unreachable(base, "did not answer /ping in time"))?
        .map_err(|e| unreachable(base, &format!("could not be reached: {e}")))?;
    if !resp.status().is_success() {
        return Err(unreachable(
            base,
            &format!("answered /ping with {}", resp.status()),
        ));
    }
    let body = tokio::time::timeout(
        PING_TIMEOUT,
        axum::body::to_bytes(Body::new(resp.into_body()), 64 << 10),
    )
    .await
    .map_err(|_| unreachable(base, "did not finish /ping in time"))?
    .map_err(|e| unreachable(base, &format!("sent a bad /ping body: {e}")))?;
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string));
    match status.as_deref() {
        Some("Healthy" | "HealthyBusy") => Ok(()),
        other => Err(unreachable(
            base,
            &format!("reported ping status {other:?}"),
        )),
    }
}

/// Sends the invocation; returns the agent's answer (2xx) with its body still streaming.
pub async fn invoke(
    client: &AgentClient,
    base: &str,
    headers: &HeaderMap,
    session: &str,
    request_id: &str,
    payload: Bytes,
) -> Result<Response<Body>, AgentCoreError> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(url(base, "/invocations")?);
    for (k, v) in headers {
        if passed_header(k.as_str()) && k.as_str() != SESSION_HEADER {
            req = req.header(k, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(session) {
        req = req.header(SESSION_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        req = req.header(REQUEST_ID_HEADER, v);
    }
    let req = req
        .body(Body::from(payload))
        .map_err(|e| AgentCoreError::new(ErrorKind::InternalServer, e.to_string()))?;
    let resp = tokio::time::timeout(ANSWER_TIMEOUT, client.request(req))
        .await
        .map_err(|_| unreachable(base, "did not answer in 15 minutes"))?
        .map_err(|e| unreachable(base, &format!("could not be reached: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(AgentCoreError::new(
            ErrorKind::RuntimeClientError,
            format!(
                "Received error ({}) from runtime. Please check your CloudWatch logs for more information.",
                status.as_u16()
            ),
        ));
    }
    Ok(resp.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_contract_and_trace_headers_only() {
        for h in [
            "content-type",
            "traceparent",
            "baggage",
            "x-amzn-bedrock-agentcore-runtime-custom-tenant",
            SESSION_HEADER,
        ] {
            assert!(passed_header(h), "{h}");
        }
        for h in [
            "authorization",
            "x-amz-date",
            "host",
            "x-amz-security-token",
            "x-amzn-bedrock-agentcore-runtime-user-id",
        ] {
            assert!(!passed_header(h), "{h}");
        }
    }
}
