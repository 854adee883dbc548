//! The Messages API's stream: `message_start`; per block `content_block_start`,
//! `content_block_delta` (`text_delta`, `citations_delta`, `input_json_delta`) and
//! `content_block_stop`; `message_delta` (stop reason, usage; the trace steps when asked
//! for) and `message_stop`. Every event has its `event:` line (Anthropic's SDKs drop events
//! without one); `ping` goes out after [`crate::sse::KEEPALIVE`] of silence. An error
//! mid-stream is `event: error` with Anthropic's error body. Nothing here keeps the answer.

use super::types::{self, Block, Citation, Usage};
use crate::doors::AnswerMeta;
use crate::sse::{SseEncoder, write_event};
use agentbridge::Error;
use agentbridge::canonical::Piece;
use serde::Serialize;
use serde_json::{Value, json};

/// Anthropic's keep-alive event.
pub const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// Writes an answer as Messages API events.
#[derive(Debug)]
pub struct EventWriter {
    id: String,
    meta: AnswerMeta,
    session_id: String,
    include_trace: bool,
    traces: Vec<Value>,
    started: bool,
    /// The next block's index.
    next: usize,
    /// The open text block's index.
    open: Option<usize>,
}

/// The events, serialised from borrowed fields (no `serde_json::Value` tree per event).
#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: types::Message<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: &'a Block,
}

#[derive(Serialize)]
struct BlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

#[derive(Serialize)]
struct Delta<D> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: D,
}

#[derive(Serialize)]
struct CitationDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    citation: &'a Citation,
}

#[derive(Serialize)]
struct InputJsonDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    partial_json: &'a str,
}

#[derive(Serialize)]
struct MessageDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_reported: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a [Value]>,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

/// `message_stop`, which never changes.
const MESSAGE_STOP: &[u8] = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

#[derive(Serialize)]
struct TextDeltaBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

impl EventWriter {
    /// A writer for the answer of `meta`'s request on `session_id`.
    pub fn new(id: String, meta: AnswerMeta, session_id: &str, include_trace: bool) -> Self {
        Self {
            id,
            meta,
            session_id: session_id.to_string(),
            include_trace,
            traces: Vec::new(),
            started: false,
            next: 0,
            open: None,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = types::Message {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: &self.meta.model,
            content: &[],
            stop_reason: None,
            stop_sequence: None,
            usage: Usage::default(),
            usage_reported: None,
            session_id: &self.session_id,
            trace: None,
            files: &[],
        };
        write_event(
            out,
            Some("message_start"),
            &MessageStart {
                kind: "message_start",
                message,
            },
        );
    }

    fn open_block(&mut self, out: &mut Vec<u8>, block: &Block) -> usize {
        let index = self.next;
        self.next += 1;
        write_event(
            out,
            Some("content_block_start"),
            &BlockStart {
                kind: "content_block_start",
                index,
                content_block: block,
            },
        );
        index
    }

    fn stop_block(out: &mut Vec<u8>, index: usize) {
        write_event(
            out,
            Some("content_block_stop"),
            &BlockStop {
                kind: "content_block_stop",
                index,
            },
        );
    }

    /// The open text block, opening one if none is.
    fn text_block(&mut self, out: &mut Vec<u8>) -> usize {
        if let Some(i) = self.open {
            return i;
        }
        let empty = Block::Text {
            text: String::new(),
            citations: None,
        };
        let i = self.open_block(out, &empty);
        self.open = Some(i);
        i
    }

    fn close_text(&mut self, out: &mut Vec<u8>) {
        if let Some(i) = self.open.take() {
            Self::stop_block(out, i);
        }
    }
}

impl SseEncoder for EventWriter {
    fn piece(&mut self, piece: Piece, out: &mut Vec<u8>) {
        self.start(out);
        match piece {
            Piece::Text(t) => {
                let index = self.text_block(out);
                let delta = Delta {
                    kind: "content_block_delta",
                    index,
                    delta: TextDeltaBody {
                        kind: "text_delta",
                        text: &t,
                    },
                };
                write_event(out, Some("content_block_delta"), &delta);
            }
            Piece::Citations { annotations, .. } => {
                let index = self.text_block(out);
                for a in annotations {
                    let citation = Citation::new(a, String::new());
                    let delta = Delta {
                        kind: "content_block_delta",
                        index,
                        delta: CitationDelta {
                            kind: "citations_delta",
                            citation: &citation,
                        },
                    };
                    write_event(out, Some("content_block_delta"), &delta);
                }
            }
            Piece::ToolCalls(calls) => {
                self.close_text(out);
                for call in calls {
                    let arguments = call.function.arguments.clone();
                    let Block::ToolUse { id, name, .. } = Block::tool_use(call) else {
                        continue;
                    };
                    let start = Block::ToolUse {
                        id,
                        name,
                        input: json!({}),
                    };
                    let index = self.open_block(out, &start);
                    let delta = Delta {
                        kind: "content_block_delta",
                        index,
                        delta: InputJsonDelta {
                            kind: "input_json_delta",
                            partial_json: &arguments,
                        },
                    };
                    write_event(out, Some("content_block_delta"), &delta);
                    Self::stop_block(out, index);
                }
            }
            // The Messages format has no place for files in a stream.
            Piece::Files(_) => {}
            Piece::Trace(t) => {
                if self.include_trace {
                    self.traces.push(t);
                }
            }
            Piece::End(ending) => {
                self.close_text(out);
                let traces = self.include_trace.then(|| std::mem::take(&mut self.traces));
                let delta = MessageDelta {
                    kind: "message_delta",
                    delta: StopDelta {
                        stop_reason: types::stop_reason(ending.finish),
                        stop_sequence: None,
                    },
                    usage: Usage::of(&ending),
                    usage_reported: (!ending.usage_reported).then_some(false),
                    trace: traces.as_deref(),
                };
                write_event(out, Some("message_delta"), &delta);
                out.extend_from_slice(MESSAGE_STOP);
            }
        }
    }

    fn error(&mut self, e: &Error, out: &mut Vec<u8>) {
        let (_, kind) = types::for_status(e.status_code());
        write_event(out, Some("error"), &types::error_body(kind, &e.to_string()));
    }

    fn keepalive(&self) -> Option<&'static [u8]> {
        Some(PING)
    }
}
