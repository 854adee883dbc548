//! Server-Sent Events for chat completion chunks: one `data:` event per chunk, written as it
//! comes; `data: [DONE]` after a clean end; an in-band `data: {"error": {...}}` event (and no
//! `[DONE]`) when the agent fails mid-stream.

use agentbridge::{ChatChunk, Error};
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One chunk as an SSE event.
pub fn event(chunk: &ChatChunk) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut out, chunk).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// An error as an in-band SSE event.
pub fn error_event(e: &Error) -> Bytes {
    tracing::warn!(error = %e, "agent stream failed mid-way; reported in-band");
    Bytes::from(format!("data: {}\n\n", e.to_openai_json()))
}

/// The end marker.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Turns a chunk stream into SSE bytes.
pub fn body<S>(chunks: S) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send
where
    S: Stream<Item = agentbridge::Result<ChatChunk>> + Send + 'static,
{
    SseBody {
        chunks: Box::pin(chunks),
        ended: false,
    }
}

struct SseBody<S> {
    chunks: Pin<Box<S>>,
    ended: bool,
}

impl<S> Stream for SseBody<S>
where
    S: Stream<Item = agentbridge::Result<ChatChunk>>,
{
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let event = match self.chunks.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(c))) => event(&c),
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                error_event(&e)
            }
            Poll::Ready(None) => {
                self.ended = true;
                Bytes::from_static(DONE)
            }
        };
        Poll::Ready(Some(Ok(event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbridge::AwsErrorKind;
    use futures::StreamExt;

    fn chunk() -> ChatChunk {
        serde_json::from_value(serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]}))
        .unwrap()
    }

    #[tokio::test]
    async fn clean_stream_ends_with_done() {
        let out: Vec<Bytes> = body(futures::stream::iter(vec![Ok(chunk())]))
            .map(|b| b.unwrap())
            .collect()
            .await;
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with(b"data: {") && out[0].ends_with(b"\n\n"));
        assert_eq!(&out[1][..], DONE);
    }

    #[tokio::test]
    async fn midstream_exception_ends_stream_in_band() {
        let err = Error::Aws {
            kind: AwsErrorKind::Throttling,
            code: "ThrottlingException".into(),
            message: "slow".into(),
            retry_after: None,
        };
        let out: Vec<Bytes> = body(futures::stream::iter(vec![
            Ok(chunk()),
            Err(err),
            Ok(chunk()),
        ]))
        .map(|b| b.unwrap())
        .collect()
        .await;
        assert_eq!(out.len(), 2);
        let text = std::str::from_utf8(&out[1]).unwrap();
        assert!(text.starts_with("data: {\"error\""), "{text}");
        assert!(text.contains("rate_limit_error"));
        assert!(!out.iter().any(|b| &b[..] == DONE));
    }
}
