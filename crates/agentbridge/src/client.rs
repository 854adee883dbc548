//! The HTTP client every target shares: one pooled hyper client, the retry loop, AWS error
//! responses, and the response body under the deployment's timeouts. What a call looks like
//! (path, headers, signature) and how its body is read belong to each target.
//!
//! Retried (up to `num_retries`, jittered exponential backoff from 100 ms, honouring
//! `retry-after`): connection failures (nothing reached AWS) and error statuses AWS answers
//! before the stream (`ThrottlingException`, `ServiceQuotaExceededException`, 5xx). Never
//! retried: anything after a 200 (the agent has accepted the request and may have acted),
//! timeouts while waiting for the answer, and client errors.

use crate::deployment::Deployment;
use crate::error::{AwsErrorKind, Error, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

type Http = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
/// An upstream response.
pub type Response = http::Response<Incoming>;

/// Characters kept as-is in URI path segments (RFC 3986 unreserved).
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The upstream client: hyper's pooled HTTP/1.1 client over rustls (HTTPS, with the
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

    /// Sends a request made by `build` (called once per attempt, so each attempt is signed
    /// afresh), retrying what is safe up to the deployment's `num_retries`, and returns the
    /// successful response. `what` names the call in logs.
    pub async fn send<F, Fut>(
        &self,
        d: &Deployment,
        deadline: Instant,
        what: &'static str,
        mut build: F,
    ) -> Result<Response>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<http::Request<Full<Bytes>>>>,
    {
        let mut attempt = 0u32;
        loop {
            let result = match build().await {
                Ok(request) => self.send_once(d, request, deadline).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_retryable() && attempt < d.settings.num_retries => {
                    let wait = backoff(attempt, &e);
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error = %e, call = what, "retrying");
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
        request: http::Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response> {
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
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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

/// An AWS error response (status, `x-amzn-ErrorType`, JSON `message`) as an [`Error::Aws`].
pub async fn aws_http_error(resp: Response, wait: Duration) -> Error {
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
            402 => AwsErrorKind::ServiceQuotaExceeded,
            401 => AwsErrorKind::Unauthorized,
            403 => AwsErrorKind::AccessDenied,
            409 => AwsErrorKind::Conflict,
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

/// A response body's bytes, under the idle and total timeouts: each item is what arrived;
/// an idle gap longer than the deployment's `stream_timeout`, or the whole call passing
/// its `timeout`, ends the stream with [`Error::Timeout`].
///
/// One timer serves both: it is armed for the earliest moment a timeout could fire and, as
/// data only ever pushes the idle deadline later, re-armed only when it goes off early.
pub struct TimedBody {
    body: Incoming,
    idle: Duration,
    deadline: Instant,
    last_data: Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl TimedBody {
    /// `resp`'s body with `d`'s idle timeout and the call's `deadline`.
    pub fn new(resp: Response, d: &Deployment, deadline: Instant) -> Self {
        let now = Instant::now();
        let idle = d.settings.timeouts.idle;
        Self {
            body: resp.into_body(),
            idle,
            deadline,
            last_data: now,
            timer: Box::pin(tokio::time::sleep_until((now + idle).min(deadline))),
            done: false,
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Bytes>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl futures::Stream for TimedBody {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(bytes) = frame.into_data() {
                        this.last_data = Instant::now();
                        return Poll::Ready(Some(Ok(bytes)));
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
                    return Poll::Ready(None);
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
