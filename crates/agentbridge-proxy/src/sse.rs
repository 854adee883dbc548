//! Server-Sent Events for every door: the answer's pieces are written by the door's
//! [`SseEncoder`] as they come. After [`Piece::End`] the door writes its end (Chat
//! Completions: `data: [DONE]`); an error mid-stream is written as the door's in-band error
//! and ends the stream. The usage and cost of the end are kept for spend accounting. A door
//! whose format has a keep-alive event ([`SseEncoder::keepalive`]) gets it after each
//! [`KEEPALIVE`] without output (one timer per stream, never reset: a tick that finds output
//! since the last one writes nothing).

use agentbridge::Error;
use agentbridge::canonical::{Outcome, Piece};
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// How a door writes its stream.
pub trait SseEncoder: Send + Unpin + 'static {
    /// Writes the events a piece becomes (for [`Piece::End`]: the door's closing events).
    fn piece(&mut self, piece: Piece, out: &mut Vec<u8>);
    /// Writes the door's in-band error event(s). The stream ends after it.
    fn error(&mut self, e: &Error, out: &mut Vec<u8>);
    /// The event written when the stream has been silent for [`KEEPALIVE`], if the format
    /// has one (Anthropic's `ping`).
    fn keepalive(&self) -> Option<&'static [u8]> {
        None
    }
}

/// How long a stream may be silent before the door's keep-alive event goes out.
pub const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Appends one SSE event: `event: {name}` when named, then `data: {json}`.
pub fn write_event<T: serde::Serialize>(out: &mut Vec<u8>, name: Option<&str>, data: &T) {
    write_event_with(out, name, |out| {
        if serde_json::to_writer(&mut *out, data).is_err() {
            out.extend_from_slice(b"{}");
        }
    });
}

/// Appends one SSE event whose `data` JSON `write` appends.
pub fn write_event_with(out: &mut Vec<u8>, name: Option<&str>, write: impl FnOnce(&mut Vec<u8>)) {
    out.reserve(256);
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    write(out);
    out.extend_from_slice(b"\n\n");
}

/// Events that are ready together go out in one body frame up to this size: the bytes on
/// the wire are the same, with fewer chunk headers and writes. Nothing waits to be batched.
pub const COALESCE_BYTES: usize = 16 * 1024;

/// Usage and cost of a streamed answer, once its end has been written.
pub type OutcomeHandle = Arc<Mutex<Option<Outcome>>>;

/// Turns pieces into SSE bytes with `encoder`; the end's outcome goes to `outcome`.
pub fn body<S, E>(
    pieces: S,
    encoder: E,
    outcome: OutcomeHandle,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send
where
    S: Stream<Item = agentbridge::Result<Piece>> + Send + 'static,
    E: SseEncoder,
{
    let keepalive = encoder.keepalive().map(|event| {
        let start = tokio::time::Instant::now() + KEEPALIVE;
        let mut timer = tokio::time::interval_at(start, KEEPALIVE);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Keepalive {
            timer,
            event,
            wrote: false,
        }
    });
    SseBody {
        pieces: Box::pin(pieces),
        encoder,
        outcome,
        ended: false,
        keepalive,
    }
}

struct SseBody<S, E> {
    pieces: Pin<Box<S>>,
    encoder: E,
    outcome: OutcomeHandle,
    ended: bool,
    keepalive: Option<Keepalive>,
}

struct Keepalive {
    timer: tokio::time::Interval,
    event: &'static [u8],
    /// Whether anything went out since the last tick.
    wrote: bool,
}

impl Keepalive {
    /// Writes the event for each tick that found the stream silent since the one before.
    fn poll(&mut self, cx: &mut Context<'_>, out: &mut Vec<u8>) {
        while self.timer.poll_tick(cx).is_ready() {
            if !self.wrote {
                out.extend_from_slice(self.event);
            }
            self.wrote = false;
        }
    }
}

impl<S, E> SseBody<S, E> {
    fn fail(&mut self, e: &Error, out: &mut Vec<u8>)
    where
        E: SseEncoder,
    {
        tracing::warn!(error = %e, "agent stream failed mid-way; reported in-band");
        self.ended = true;
        self.encoder.error(e, out);
    }
}

impl<S, E> Stream for SseBody<S, E>
where
    S: Stream<Item = agentbridge::Result<Piece>>,
    E: SseEncoder,
{
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let mut out = Vec::new();
        while !this.ended && out.len() < COALESCE_BYTES {
            match this.pieces.as_mut().poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(piece))) => {
                    if let Piece::End(end) = &piece {
                        this.ended = true;
                        if let Ok(mut o) = this.outcome.lock() {
                            *o = Some(end.outcome);
                        }
                    }
                    this.encoder.piece(piece, &mut out);
                }
                Poll::Ready(Some(Err(e))) => this.fail(&e, &mut out),
                Poll::Ready(None) => this.fail(&agentbridge::completion::missing_end(), &mut out),
            }
        }
        if !out.is_empty() {
            if let Some(k) = &mut this.keepalive {
                k.wrote = true;
            }
        } else if !this.ended
            && let Some(k) = &mut this.keepalive
        {
            k.poll(cx, &mut out);
        }
        match (out.is_empty(), this.ended) {
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
    use agentbridge::canonical::{Ending, Finish};
    use futures::StreamExt;

    /// A door that writes each text as a named event and the end as `end`.
    struct Plain;
    impl SseEncoder for Plain {
        fn piece(&mut self, piece: Piece, out: &mut Vec<u8>) {
            match piece {
                Piece::Text(t) => write_event(out, Some("text"), &t),
                Piece::End(_) => out.extend_from_slice(b"event: end\ndata: {}\n\n"),
                _ => {}
            }
        }
        fn error(&mut self, e: &Error, out: &mut Vec<u8>) {
            write_event(out, Some("error"), &e.code());
        }
    }

    fn text() -> agentbridge::Result<Piece> {
        Ok(Piece::Text("hi".into()))
    }

    fn end() -> agentbridge::Result<Piece> {
        Ok(Piece::End(Ending {
            finish: Finish::Stop,
            outcome: Outcome {
                cost: 0.5,
                ..Default::default()
            },
            usage_reported: true,
        }))
    }

    const TEXT: &[u8] = b"event: text\ndata: \"hi\"\n\n";
    const END: &[u8] = b"event: end\ndata: {}\n\n";

    #[tokio::test]
    async fn pieces_ready_together_share_a_frame_and_the_outcome_is_kept() {
        let outcome = OutcomeHandle::default();
        let out: Vec<Bytes> = body(
            futures::stream::iter(vec![text(), text(), end(), text()]),
            Plain,
            Arc::clone(&outcome),
        )
        .map(|b| b.unwrap())
        .collect()
        .await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0], [TEXT, TEXT, END].concat());
        assert_eq!(outcome.lock().unwrap().map(|o| o.cost), Some(0.5));
    }

    #[tokio::test]
    async fn events_go_out_as_they_come_when_not_ready_together() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut sse = Box::pin(body(rx, Plain, OutcomeHandle::default()));
        tx.unbounded_send(text()).unwrap();
        let first = sse.next().await.unwrap().unwrap();
        assert_eq!(first, TEXT);
        // Nothing more is ready: the body waits instead of holding the first event back.
        assert!(futures::poll!(sse.next()).is_pending());
        tx.unbounded_send(text()).unwrap();
        tx.unbounded_send(end()).unwrap();
        let rest = sse.next().await.unwrap().unwrap();
        assert_eq!(rest, [TEXT, END].concat());
        assert!(sse.next().await.is_none());
    }

    #[tokio::test]
    async fn large_bursts_are_split_into_frames_of_bounded_size() {
        let many: Vec<agentbridge::Result<Piece>> =
            (0..5000).map(|_| text()).chain([end()]).collect();
        let out: Vec<Bytes> = body(futures::stream::iter(many), Plain, OutcomeHandle::default())
            .map(|b| b.unwrap())
            .collect()
            .await;
        assert!(out.len() > 1);
        assert!(out.iter().all(|b| b.len() < COALESCE_BYTES + 1024));
        assert_eq!(out.concat().len(), 5000 * TEXT.len() + END.len());
    }

    #[tokio::test]
    async fn midstream_error_ends_the_stream_in_band_and_charges_nothing() {
        let err = Error::Aws {
            kind: AwsErrorKind::Throttling,
            code: "ThrottlingException".into(),
            message: "slow".into(),
            retry_after: None,
        };
        let outcome = OutcomeHandle::default();
        let out: Vec<Bytes> = body(
            futures::stream::iter(vec![text(), Err(err), text()]),
            Plain,
            Arc::clone(&outcome),
        )
        .map(|b| b.unwrap())
        .collect()
        .await;
        let all = out.concat();
        assert_eq!(
            all,
            [TEXT, b"event: error\ndata: \"ThrottlingException\"\n\n"].concat()
        );
        assert!(outcome.lock().unwrap().is_none());
    }

    /// [`Plain`] with a keep-alive event.
    struct Pinging;
    impl SseEncoder for Pinging {
        fn piece(&mut self, piece: Piece, out: &mut Vec<u8>) {
            Plain.piece(piece, out)
        }
        fn error(&mut self, e: &Error, out: &mut Vec<u8>) {
            Plain.error(e, out)
        }
        fn keepalive(&self) -> Option<&'static [u8]> {
            Some(b"event: ping\ndata: {}\n\n")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_gets_the_keepalive_event_and_a_busy_one_does_not() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let start = tokio::time::Instant::now();
        let mut sse = Box::pin(body(rx, Pinging, OutcomeHandle::default()));
        tx.unbounded_send(text()).unwrap();
        assert_eq!(sse.next().await.unwrap().unwrap(), TEXT);
        // Output within the first period: its tick writes nothing, the next silent one pings.
        let ping = sse.next().await.unwrap().unwrap();
        assert_eq!(ping, &b"event: ping\ndata: {}\n\n"[..]);
        // (Virtual time: the clock jumps from timer to timer.)
        assert_eq!(start.elapsed(), 2 * KEEPALIVE);
        tx.unbounded_send(end()).unwrap();
        assert_eq!(sse.next().await.unwrap().unwrap(), END);
        assert!(sse.next().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_stops_before_its_end_is_an_error() {
        let out: Vec<Bytes> = body(
            futures::stream::iter(vec![text()]),
            Plain,
            OutcomeHandle::default(),
        )
        .map(|b| b.unwrap())
        .collect()
        .await;
        assert_eq!(
            out.concat(),
            [TEXT, b"event: error\ndata: \"upstream_malformed\"\n\n"].concat()
        );
    }
}
