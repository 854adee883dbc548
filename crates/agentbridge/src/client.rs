//! The signed HTTP client: sends InvokeAgent, retries what is safe to retry, and turns the
//! response body into a stream of [`AgentEvent`]s under the deployment's timeouts.
//!
//! Retried (up to `num_retries`, jittered exponential backoff from 100 ms, honouring
//! `retry-after`): connection failures (nothing reached AWS) and error statuses AWS answers
//! before the stream (`ThrottlingException`, `ServiceQuotaExceededException`, 5xx). Never
//! retried: anything after a 200 (the agent has accepted the request and may have acted),
//! timeouts while waiting for the answer, and client errors.

use crate::answer::AnswerState;
use crate::completion::{ChunkStream, EventStream, ResponseMeta, chunks, fold};
use crate::deployment::Deployment;
use crate::error::{AwsErrorKind, Error, Result};
use crate::events;
use crate::events::AgentEvent;
use crate::eventstream::FrameDecoder;
use crate::openai::{ChatCompletion, ChatRequest};
use crate::request::{AnswerOptions, InvokeAgentRequest, to_invoke_agent};
use crate::signing::InvokeToSign;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

type Http = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type Response = http::Response<Incoming>;

/// Characters kept as-is in path segments (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A client for InvokeAgent: hyper's pooled HTTP/1.1 client over rustls (HTTPS, with the
/// webpki roots) or plain TCP (a local endpoint such as the emulator). Cheap to clone (one
/// reference count; hyper's client alone holds several); the clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: Arc<Http>,
}

impl Client {
    /// A client with TCP_NODELAY, pooled keep-alive connections and a connect timeout.
    pub fn new(connect_timeout: Duration) -> Result<Self> {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.enforce_http(false);
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| Error::Connect(format!("TLS set-up: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Self {
            http: Arc::new(http),
        })
    }

    /// Sends the request (retrying what is safe) and returns the agent's events.
    pub async fn invoke(
        &self,
        d: &Deployment,
        req: &InvokeAgentRequest,
    ) -> Result<(EventStream, String)> {
        let deadline = Instant::now() + d.settings.timeouts.total;
        let body = Bytes::from(
            serde_json::to_vec(&req.body).map_err(|e| Error::invalid("body", e.to_string()))?,
        );
        let path = format!(
            "/agents/{}/agentAliases/{}/sessions/{}/text",
            utf8_percent_encode(&req.agent.agent_id, SEGMENT),
            utf8_percent_encode(&req.agent.alias_id, SEGMENT),
            utf8_percent_encode(&req.session_id, SEGMENT),
        );
        let url = format!("{}{}", d.endpoint, path);
        let host = d.host.as_str();
        // What the server sees as the path: the endpoint's own path (if any), then ours.
        let path = &url[url.find("://").map_or(0, |i| i + 3) + host.len()..];
        let mut attempt = 0u32;
        loop {
            match self
                .send_once(d, &url, (host, path), &body, req, deadline)
                .await
            {
                Ok(resp) => {
                    let session = resp
                        .headers()
                        .get("x-amz-bedrock-agent-session-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(&req.session_id)
                        .to_string();
                    return Ok((event_stream(resp, d, deadline), session));
                }
                Err(e) if e.is_retryable() && attempt < d.settings.num_retries => {
                    let wait = backoff(attempt, &e);
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error = %e, "retrying InvokeAgent");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send_once(
        &self,
        d: &Deployment,
        url: &str,
        (host, path): (&str, &str),
        body: &Bytes,
        req: &InvokeAgentRequest,
        deadline: Instant,
    ) -> Result<Response> {
        let creds = d.credentials.get().await?;
        let signed = d.signer.sign(
            &creds,
            &d.region,
            InvokeToSign {
                host,
                path,
                source_arn: req.source_arn.as_deref(),
                body,
            },
            SystemTime::now(),
        )?;
        let mut rb = http::Request::post(url)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/vnd.amazon.eventstream");
        if let Some(arn) = &req.source_arn {
            rb = rb.header("x-amz-source-arn", arn);
        }
        for (k, v) in signed {
            rb = rb.header(k, v);
        }
        let request = rb
            .body(Full::new(body.clone()))
            .map_err(|e| Error::invalid("request", e.to_string()))?;
        let wait = d
            .settings
            .timeouts
            .idle
            .min(deadline.saturating_duration_since(Instant::now()));
        let resp = tokio::time::timeout(wait, self.http.request(request))
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "no response from the agent within {}s",
                    wait.as_secs_f64()
                ))
            })?
            .map_err(|e| {
                if e.is_connect() {
                    Error::Connect(error_chain(&e))
                } else {
                    Error::Decode(format!(
                        "request failed after it was sent: {}",
                        error_chain(&e)
                    ))
                }
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(aws_http_error(resp, wait).await)
    }
}

/// An error and its sources, `: `-separated (hyper's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
}

async fn aws_http_error(resp: Response, wait: Duration) -> Error {
    let status = resp.status().as_u16();
    let header = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let type_header = header("x-amzn-errortype");
    let retry_after = header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = tokio::time::timeout(wait, resp.into_body().collect())
        .await
        .ok()
        .and_then(|b| b.ok())
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let code = type_header
        .or_else(|| {
            json.get("__type")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .map(|t| {
            t.split(':')
                .next()
                .unwrap_or_default()
                .rsplit('#')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("HTTP{status}"));
    let mut kind = AwsErrorKind::from_type_name(&code);
    if kind == AwsErrorKind::Other {
        kind = match status {
            429 => AwsErrorKind::Throttling,
            403 => AwsErrorKind::AccessDenied,
            404 => AwsErrorKind::ResourceNotFound,
            400 => AwsErrorKind::Validation,
            502 => AwsErrorKind::BadGateway,
            503 => AwsErrorKind::ModelNotReady,
            _ => AwsErrorKind::Other,
        };
    }
    let message = json
        .get("message")
        .or_else(|| json.get("Message"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("the agent endpoint answered HTTP {status}"));
    Error::Aws {
        kind,
        code,
        message,
        retry_after,
    }
}

fn backoff(attempt: u32, e: &Error) -> Duration {
    if let Error::Aws {
        retry_after: Some(r),
        ..
    } = e
    {
        return *r;
    }
    let base = 100u64 << attempt.min(6);
    Duration::from_millis(base / 2 + rand::random_range(0..=base / 2))
}

/// The response body as agent events, under the idle and total timeouts.
///
/// One timer serves both: it is armed for the earliest moment a timeout could fire and, as
/// data only ever pushes the idle deadline later, re-armed only when it goes off early.
struct EventBody {
    body: Incoming,
    decoder: FrameDecoder,
    idle: Duration,
    deadline: Instant,
    last_data: Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl EventBody {
    fn fail(&mut self, e: Error) -> Poll<Option<Result<AgentEvent>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl futures::Stream for EventBody {
    type Item = Result<AgentEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.decoder.next_message() {
                Err(e) => return this.fail(e),
                Ok(Some(msg)) => match events::decode(&msg) {
                    Ok(Some(ev)) => return Poll::Ready(Some(Ok(ev))),
                    Ok(None) => continue,
                    Err(e) => return this.fail(e),
                },
                Ok(None) => {}
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(bytes) = frame.data_ref() {
                        this.decoder.push(bytes);
                        this.last_data = Instant::now();
                    }
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    return this.fail(Error::Decode(format!(
                        "the agent's stream broke: {}",
                        error_chain(&e)
                    )));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return match this.decoder.finish() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e))),
                    };
                }
                Poll::Pending => {}
            }
            let now = Instant::now();
            if now >= this.deadline {
                return this.fail(Error::Timeout(
                    "the agent's answer exceeded the total timeout".into(),
                ));
            }
            let idle_at = this.last_data + this.idle;
            if now >= idle_at {
                return this.fail(Error::Timeout(format!(
                    "no event from the agent for {}s",
                    this.idle.as_secs_f64()
                )));
            }
            let wake_at = idle_at.min(this.deadline);
            if this.timer.deadline() > wake_at {
                this.timer.as_mut().reset(wake_at);
            }
            match this.timer.as_mut().poll(cx) {
                // Early (data came since it was armed): re-arm for the later deadline.
                Poll::Ready(()) => this.timer.as_mut().reset(wake_at),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn event_stream(resp: Response, d: &Deployment, deadline: Instant) -> EventStream {
    let now = Instant::now();
    let idle = d.settings.timeouts.idle;
    Box::pin(EventBody {
        body: resp.into_body(),
        decoder: FrameDecoder::new(d.settings.max_event_bytes),
        idle,
        deadline,
        last_data: now,
        timer: Box::pin(tokio::time::sleep_until((now + idle).min(deadline))),
        done: false,
    })
}

/// Events -> OpenAI, for one chat request to one deployment.
impl Client {
    /// Transforms, invokes, and returns the event stream with the answer state.
    pub async fn start(
        &self,
        d: &Deployment,
        chat: &ChatRequest,
    ) -> Result<(EventStream, AnswerState)> {
        let (req, options): (InvokeAgentRequest, AnswerOptions) =
            to_invoke_agent(&d.settings.model, chat, &d.settings.agent_params)?;
        let (events, session) = self.invoke(d, &req).await?;
        Ok((events, AnswerState::new(session, options, d.settings.price)))
    }

    /// A whole `chat.completion`. `model_name` is the name the caller used.
    pub async fn complete(
        &self,
        d: &Deployment,
        chat: &ChatRequest,
        model_name: &str,
    ) -> Result<ChatCompletion> {
        let (events, state) = self.start(d, chat).await?;
        fold(ResponseMeta::new(model_name), state, events).await
    }

    /// A stream of `chat.completion.chunk`s.
    pub async fn stream(
        &self,
        d: &Deployment,
        chat: &ChatRequest,
        model_name: &str,
    ) -> Result<ChunkStream> {
        let (events, state) = self.start(d, chat).await?;
        Ok(chunks(ResponseMeta::new(model_name), state, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let e = Error::Connect("x".into());
        assert!(backoff(0, &e) <= Duration::from_millis(100));
        assert!(backoff(3, &e) >= Duration::from_millis(400));
        let t = Error::Aws {
            kind: AwsErrorKind::Throttling,
            code: "T".into(),
            message: "m".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(backoff(0, &t), Duration::from_secs(2));
    }
}
