//! The Amazon Bedrock AgentCore Runtime target (`bedrock/agentcore/{RUNTIME_ARN}`):
//! `InvokeAgentRuntime`.
//!
//! `POST {endpoint}/runtimes/{URL-encoded ARN}/invocations[?qualifier=Q]`, signed with SigV4
//! (signing name `bedrock-agentcore`, region from the ARN unless `aws_region_name` is set) or
//! sent with `Authorization: Bearer` (the end user's token from the deployment's
//! `user_token_header`, else the deployment's `api_key`). Headers: the runtime session
//! (33-256 characters, see [`request::session_for`]), `runtimeUserId`, and the client's W3C
//! `traceparent`/`tracestate`/`baggage`, and the client headers the model forwards
//! (`CallContext::forwarded`). The payload is [`request::payload`]. The answer is
//! read by its content type: `text/event-stream` event by event ([`sse`], [`response`]),
//! anything else as one JSON body.
//!
//! Deployment settings of this target (LiteLLM's names where LiteLLM has one): `qualifier`
//! (the endpoint name; AWS's default endpoint when absent), `runtimeUserId`, `api_key`
//! (OAuth bearer instead of SigV4), `send_conversation` (also send `messages` and
//! `system_prompt`, for agents written to take the history), and the shared ones
//! (`api_base`/`aws_bedrock_runtime_endpoint`, `max_event_bytes` capping one SSE event and a
//! JSON answer, prices, timeouts, retries). `RetryableConflictException` (the session is busy
//! with another call; nothing ran) is retried with backoff like throttling; nothing is
//! retried after a 200.

pub mod arn;
pub mod request;
pub mod response;
pub mod sse;

use crate::canonical::{AgentRequest, Answer, AnswerOptions, Piece, PieceStream};
use crate::client::{Client, SEGMENT, TimedBody};
use crate::deployment::{Deployment, ParamError};
use crate::error::{AwsErrorKind, Error, Result};
use crate::pricing::Price;
use crate::signing::{InvokeSigner, InvokeToSign};
use crate::target::{Target, TargetKind};
use arn::RuntimeArn;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use http_body_util::Full;
use percent_encoding::utf8_percent_encode;
use response::SseAnswer;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sse::SseDecoder;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::time::Instant;

/// The SigV4 signing name of the AgentCore data plane.
pub const SIGNING_NAME: &str = "bedrock-agentcore";
/// The runtime session header (request and response).
pub const SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";
/// The runtime user header.
pub const USER_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-user-id";

/// The registration of this target.
pub static KIND: TargetKind = TargetKind {
    prefix: "agentcore/",
    provider: "bedrock_agentcore",
    expected: arn::EXPECTED,
    settings: &["qualifier", "runtimeUserId", "send_conversation"],
    parse,
};

fn parse(
    model: &str,
    params: &Map<String, Value>,
    errors: &mut Vec<ParamError>,
) -> Option<Arc<dyn Target>> {
    let before = errors.len();
    let mut err = |key: &str, message: String| {
        errors.push(ParamError {
            key: key.into(),
            message,
        })
    };
    let arn = RuntimeArn::parse(model);
    if arn.is_none() {
        err(
            "model",
            format!("invalid model {model:?}: expected {}", arn::EXPECTED),
        );
    }
    let mut string = |key: &str| match params.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Some(other) => {
            err(key, format!("expected a non-empty string, got {other}"));
            None
        }
    };
    let qualifier = string("qualifier");
    let user_id = string("runtimeUserId");
    let api_key = string("api_key").map(SecretString::from);
    let send_conversation = match params.get("send_conversation") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(ParamError {
                key: "send_conversation".into(),
                message: format!("expected true or false, got {other}"),
            });
            false
        }
    };
    match arn {
        Some(arn) if errors.len() == before => Some(Arc::new(AgentCoreRuntime {
            arn,
            qualifier,
            user_id,
            api_key,
            send_conversation,
            signer: InvokeSigner::for_service(SIGNING_NAME),
        })),
        _ => None,
    }
}

/// One AgentCore Runtime agent (an ARN and, optionally, an endpoint).
#[derive(Debug)]
pub struct AgentCoreRuntime {
    /// The runtime.
    pub arn: RuntimeArn,
    /// `qualifier`: the endpoint name.
    pub qualifier: Option<String>,
    /// `runtimeUserId`.
    pub user_id: Option<String>,
    /// `api_key`: an OAuth bearer token sent instead of a SigV4 signature.
    api_key: Option<SecretString>,
    /// `send_conversation`.
    pub send_conversation: bool,
    /// SigV4 as `bedrock-agentcore`, with the day's signing key cached.
    signer: InvokeSigner,
}

impl AgentCoreRuntime {
    /// The request path (and query) after the endpoint.
    pub fn path(&self) -> String {
        let mut path = format!(
            "/runtimes/{}/invocations",
            utf8_percent_encode(&self.arn.arn, SEGMENT)
        );
        if let Some(q) = &self.qualifier {
            path.push_str("?qualifier=");
            path.extend(utf8_percent_encode(q, SEGMENT));
        }
        path
    }

    async fn call(&self, d: &Deployment, http: &Client, req: &AgentRequest) -> Result<Answer> {
        let session = request::session_for(req, &d.settings.agent_params)?;
        let payload = Bytes::from(request::payload(
            req,
            &d.settings.agent_params,
            self.send_conversation,
        )?);
        let bearer = match (&d.settings.user_token_header, &req.context.user_token) {
            (Some(_), Some(token)) => Some(token),
            (Some(h), None) => {
                return Err(Error::Aws {
                    kind: AwsErrorKind::Unauthorized,
                    code: "MissingUserToken".into(),
                    message: format!(
                        "this model sends each user's own token to the agent: the request has no {h} header"
                    ),
                    retry_after: None,
                });
            }
            (None, _) => self.api_key.as_ref(),
        };
        let url = format!("{}{}", d.endpoint, self.path());
        let host = d.host.as_str();
        let target = d.request_target(&url);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let deadline = Instant::now() + d.settings.timeouts.total;
        let resp = http
            .send(d, deadline, "InvokeAgentRuntime", || async {
                // Signed besides host, content type and date (in byte order, as SigV4 signs).
                let mut signed: Vec<(&str, &str)> = vec![(SESSION_HEADER, session.as_str())];
                if let Some(u) = &self.user_id {
                    signed.push((USER_HEADER, u.as_str()));
                }
                let mut rb = http::Request::post(url.as_str())
                    .header(http::header::HOST, host)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(http::header::ACCEPT, "application/json, text/event-stream");
                for (k, v) in &signed {
                    rb = rb.header(*k, *v);
                }
                let ctx = &req.context;
                for (k, v) in [
                    ("traceparent", &ctx.traceparent),
                    ("tracestate", &ctx.tracestate),
                    ("baggage", &ctx.baggage),
                ] {
                    if let Some(v) = v {
                        rb = rb.header(k, v.as_str());
                    }
                }
                // Unsigned, as SigV4 allows (none is an `x-amz-` name); the runtime passes
                // the ones its header allowlist names to the agent.
                for (k, v) in &ctx.forwarded {
                    rb = rb.header(k, v);
                }
                match bearer {
                    Some(token) => {
                        rb = rb.header(
                            http::header::AUTHORIZATION,
                            format!("Bearer {}", token.expose_secret()),
                        );
                    }
                    None => {
                        let creds = d.credentials.get().await?;
                        let auth = self.signer.sign(
                            &creds,
                            &d.region,
                            InvokeToSign {
                                host,
                                path,
                                query,
                                source_arn: None,
                                extra: &signed,
                                body: &payload,
                            },
                            SystemTime::now(),
                        )?;
                        for (k, v) in auth {
                            rb = rb.header(k, v);
                        }
                    }
                }
                rb.body(Full::new(payload.clone()))
                    .map_err(|e| Error::invalid("request", e.to_string()))
            })
            .await?;
        let session_id = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .unwrap_or(&session)
            .to_string();
        let is_sse = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim_start().starts_with("text/event-stream"));
        let price = d.settings.price;
        let body = TimedBody::new(resp, d, deadline);
        let pieces = if is_sse {
            sse_pieces(body, d.settings.max_event_bytes, req.options, price)
        } else {
            let bytes = read_all(body, d.settings.max_event_bytes).await?;
            let pieces = response::json_answer(&bytes, req.options, price);
            Box::pin(futures::stream::iter(pieces.into_iter().map(Ok))) as PieceStream
        };
        Ok(Answer { session_id, pieces })
    }
}

impl Target for AgentCoreRuntime {
    fn provider(&self) -> &'static str {
        KIND.provider
    }

    fn model(&self) -> String {
        self.arn.to_string()
    }

    fn default_endpoint(&self, region: &str) -> String {
        format!("https://bedrock-agentcore.{region}.amazonaws.com")
    }

    fn region(&self) -> Option<&str> {
        Some(&self.arn.region)
    }

    fn bearer_token(&self) -> Option<&SecretString> {
        self.api_key.as_ref()
    }

    fn invoke<'a>(
        &'a self,
        d: &'a Deployment,
        http: &'a Client,
        req: &'a AgentRequest,
    ) -> BoxFuture<'a, Result<Answer>> {
        Box::pin(self.call(d, http, req))
    }
}

/// A whole (non-SSE) body, refused beyond `max` bytes.
async fn read_all(mut body: TimedBody, max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > max {
            return Err(Error::Decode(format!(
                "the agent's answer exceeds max_event_bytes ({max} bytes)"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An SSE body as pieces: each event's pieces as it arrives, then the end (or the error).
pub fn sse_pieces(
    body: impl futures::Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
    max_event_bytes: usize,
    options: AnswerOptions,
    price: Option<Price>,
) -> PieceStream {
    struct Walk<B> {
        body: B,
        decoder: SseDecoder,
        state: Option<SseAnswer>,
        ready: std::vec::IntoIter<Piece>,
        body_done: bool,
    }
    let walk = Walk {
        body,
        decoder: SseDecoder::new(max_event_bytes),
        state: Some(SseAnswer::new(options, price)),
        ready: Vec::new().into_iter(),
        body_done: false,
    };
    Box::pin(futures::stream::unfold(walk, |mut w| async move {
        loop {
            if let Some(p) = w.ready.next() {
                return Some((Ok(p), w));
            }
            let state = w.state.as_mut()?;
            let next = if w.body_done {
                w.decoder.finish()
            } else {
                w.decoder.next_event()
            };
            match next {
                Ok(Some(data)) => match state.accept(&data) {
                    Ok(pieces) => w.ready = pieces.into_iter(),
                    Err(e) => {
                        w.state = None;
                        return Some((Err(e), w));
                    }
                },
                Ok(None) if w.body_done => {
                    if let Some(s) = w.state.take() {
                        w.ready = s.end().into_iter();
                    }
                }
                Ok(None) => match w.body.next().await {
                    Some(Ok(bytes)) => w.decoder.push(&bytes),
                    Some(Err(e)) => {
                        w.state = None;
                        return Some((Err(e), w));
                    }
                    None => w.body_done = true,
                },
                Err(e) => {
                    w.state = None;
                    return Some((Err(e), w));
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests;
