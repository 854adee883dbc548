//! What the emulator puts on the wire besides event frames: AWS error responses, and the
//! event-stream response whose body notices a client that went away.

use crate::agent::Step;
use crate::observe::Stats;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
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

pub fn uuid_like() -> String {
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

pub fn event_stream_response(
    stats: &Arc<Stats>,
    session: &str,
    memory: Option<&str>,
    steps: Vec<Step>,
) -> Response {
    stats.open.fetch_add(1, Ordering::Relaxed);
    let guard = StreamGuard {
        stats: Arc::clone(stats),
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
