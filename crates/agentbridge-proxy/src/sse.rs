//! Server-Sent Events for chat completion chunks: one `data:` event per chunk, written as it
//! comes; `data: [DONE]` after a clean end; an in-band `data: {"error": {...}}` event (and no
//! `[DONE]`) when the agent fails mid-stream.

use agentbridge::{ChatChunk, Error};
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Appends one chunk as an SSE event.
fn write_event(out: &mut Vec<u8>, chunk: &ChatChunk) {
    out.reserve(256);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, chunk).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// Appends an error as an in-band SSE event.
fn write_error(out: &mut Vec<u8>, e: &Error) {
    tracing::warn!(error = %e, "agent stream failed mid-way; reported in-band");
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, &e.to_openai_json()).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// The end marker.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Events that are ready together go out in one body frame up to this size: the bytes on
/// the wire are the same, with fewer chunk headers and writes. Nothing waits to be batched.
const COALESCE_BYTES: usize = 16 * 1024;

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
        let mut out = Vec::new();
        while !self.ended && out.len() < COALESCE_BYTES {
            match self.chunks.as_mut().poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(c))) => write_event(&mut out, &c),
                Poll::Ready(Some(Err(e))) => {
                    self.ended = true;
                    write_error(&mut out, &e);
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    out.extend_from_slice(DONE);
                }
            }
        }
        match (out.is_empty(), self.ended) {
            (false, _) => Poll::Ready(Some(Ok(Bytes::from(out)))),
            (true, true) => Poll::Ready(None),
            (true, false) => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbridge::AwsErrorKind;
    use futures::StreamExt;

    fn event(chunk: &ChatChunk) -> Vec<u8> {
        let mut out = Vec::new();
        write_event(&mut out, chunk);
        out
    }

    fn chunk() -> ChatChunk {
        serde_json::from_value(serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]}))
        .unwrap()
    }

    #[tokio::test]
    async fn clean_stream_ends_with_done() {
        let out: Vec<Bytes> = body(futures::stream::iter(vec![Ok(chunk()), Ok(chunk())]))
            .map(|b| b.unwrap())
            .collect()
            .await;
        // Everything was ready at once: one frame, two events and the end marker.
        assert_eq!(out.len(), 1);
        let text = std::str::from_utf8(&out[0]).unwrap();
        let events: Vec<&str> = text.split_terminator("\n\n").collect();
        assert_eq!(events.len(), 3, "{text}");
        assert!(
            events[..2]
                .iter()
                .all(|e| e.starts_with("data: {") && e.ends_with('}'))
        );
        assert_eq!(format!("{}\n\n", events[2]).as_bytes(), DONE);
    }

    #[tokio::test]
    async fn events_go_out_as_they_come_when_not_ready_together() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut sse = Box::pin(body(rx));
        tx.unbounded_send(Ok(chunk())).unwrap();
        let first = sse.next().await.unwrap().unwrap();
        assert_eq!(first, event(&chunk()));
        // Nothing more is ready: the body waits instead of holding the first event back.
        assert!(futures::poll!(sse.next()).is_pending());
        tx.unbounded_send(Ok(chunk())).unwrap();
        drop(tx);
        let rest = sse.next().await.unwrap().unwrap();
        assert_eq!(rest, [&event(&chunk())[..], DONE].concat());
        assert!(sse.next().await.is_none());
    }

    #[tokio::test]
    async fn large_bursts_are_split_into_frames_of_bounded_size() {
        let many: Vec<agentbridge::Result<ChatChunk>> = (0..1000).map(|_| Ok(chunk())).collect();
        let out: Vec<Bytes> = body(futures::stream::iter(many))
            .map(|b| b.unwrap())
            .collect()
            .await;
        assert!(out.len() > 1);
        assert!(out.iter().all(|b| b.len() < COALESCE_BYTES + 1024));
        let all: Vec<u8> = out.concat();
        assert_eq!(all.len(), 1000 * event(&chunk()).len() + DONE.len());
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
        let all = out.concat();
        let text = std::str::from_utf8(&all).unwrap();
        let events: Vec<&str> = text.split_terminator("\n\n").collect();
        assert_eq!(events.len(), 2, "{text}");
        assert!(events[1].starts_with("data: {\"error\""), "{text}");
        assert!(events[1].contains("rate_limit_error"));
        assert!(!text.contains("[DONE]"));
    }
}
