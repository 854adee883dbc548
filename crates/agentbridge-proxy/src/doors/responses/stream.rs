//! The Responses API's stream: `response.created`, `response.in_progress`, then per output
//! item `response.output_item.added`, its content (`response.content_part.added`,
//! `response.output_text.delta`, `response.output_text.annotation.added`,
//! `response.output_text.done`, `response.content_part.done`; or
//! `response.function_call_arguments.delta` / `.done`), `response.output_item.done`, and
//! `response.completed` (`response.incomplete` when a guardrail intervened) with the whole
//! response. Every event is named and numbered (`sequence_number`). A failure mid-stream is
//! `response.failed` (the response with its `error`) followed by an `error` event.

use super::Ctx;
use super::types::{Builder, OutputItem, UrlCitation};
use crate::doors::AnswerMeta;
use crate::sse::{SseEncoder, write_event_with};
use agentbridge::Error;
use agentbridge::canonical::{Ending, Finish, Piece};
use serde::Serialize;
use serde_json::json;

/// Writes an answer as Responses API events.
#[derive(Debug)]
pub struct EventWriter {
    builder: Builder,
    meta: AnswerMeta,
    ctx: Ctx,
    session_id: String,
    include_trace: bool,
    seq: u64,
    started: bool,
    /// The open message's index and [`locator`].
    locator: Option<(usize, Vec<u8>)>,
}

// The events' bodies, borrowed from the builder and serialised straight into the output
// (no `serde_json::Value` tree per event).

#[derive(Serialize)]
struct Item<T: Serialize> {
    output_index: usize,
    item: T,
}

/// A function call item as `response.output_item.added` announces it: no arguments yet.
#[derive(Serialize)]
struct OpenedCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    call_id: &'a str,
    name: &'a str,
    arguments: &'static str,
}

#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDone<'a> {
    item_id: &'a str,
    output_index: usize,
    name: &'a str,
    arguments: &'a str,
}

/// Appends `value` as JSON: strings, numbers and plain structs of them, whose serialisation
/// into a `Vec` cannot fail.
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Appends the start of an event's data, `{"type":"{kind}","sequence_number":{seq}`, and
/// counts the event. `kind` is one of the format's event names: plain ASCII, nothing to
/// escape. The event's other members follow, each after a `,`.
fn open_event(out: &mut Vec<u8>, seq: &mut u64, kind: &str) {
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(br#"","sequence_number":"#);
    json(out, seq);
    *seq += 1;
}

/// An event whose other members are `body`'s fields (a struct serialising as an object).
fn emit<T: Serialize>(out: &mut Vec<u8>, seq: &mut u64, kind: &str, body: T) {
    write_event_with(out, Some(kind), |out| {
        open_event(out, seq, kind);
        let start = out.len();
        match serde_json::to_writer(&mut *out, &body) {
            // `{"a":1}` continues the event as `,"a":1}`.
            Ok(()) if out.len() - start > 2 => out[start] = b',',
            _ => {
                out.truncate(start);
                out.push(b'}');
            }
        }
    });
}

/// A lifecycle event (`response.created`, ...): `{type, sequence_number, response}`, the
/// response object already written as JSON ([`super::types::ResponseObject::to_json`]).
fn emit_response(out: &mut Vec<u8>, seq: &mut u64, kind: &'static str, response: &[u8]) {
    write_event_with(out, Some(kind), |out| {
        open_event(out, seq, kind);
        out.extend_from_slice(br#","response":"#);
        out.extend_from_slice(response);
        out.push(b'}');
    });
}

/// The members that place a content event in its message,
/// `"item_id":"msg_...","output_index":I,"content_index":0`: written once per message (its
/// id escaped once) and copied into each of the message's content events, the deltas
/// above all.
fn locator(id: &str, output_index: usize) -> Vec<u8> {
    let mut l = Vec::with_capacity(id.len() + 48);
    l.extend_from_slice(br#""item_id":"#);
    json(&mut l, id);
    l.extend_from_slice(br#","output_index":"#);
    json(&mut l, &output_index);
    l.extend_from_slice(br#","content_index":0"#);
    l
}

/// A content event of a message: its start, `locator`, then the members `rest` writes
/// (after a `,`).
fn emit_content(
    out: &mut Vec<u8>,
    seq: &mut u64,
    kind: &str,
    locator: &[u8],
    rest: impl FnOnce(&mut Vec<u8>),
) {
    write_event_with(out, Some(kind), |out| {
        open_event(out, seq, kind);
        out.push(b',');
        out.extend_from_slice(locator);
        out.push(b',');
        rest(out);
        out.push(b'}');
    });
}

impl EventWriter {
    /// A writer for the answer of `meta`'s request on `session_id`.
    pub fn new(ctx: Ctx, meta: AnswerMeta, session_id: &str, include_trace: bool) -> Self {
        Self {
            builder: Builder::new(&meta, session_id),
            meta,
            ctx,
            session_id: session_id.to_string(),
            include_trace,
            seq: 0,
            started: false,
            locator: None,
        }
    }

    /// The response object as `ending` leaves it (in progress for `None`), as JSON.
    fn response(&self, ending: Option<&Ending>) -> Vec<u8> {
        self.builder
            .response(
                &self.meta,
                &self.ctx.echo,
                &self.session_id,
                ending,
                self.include_trace,
            )
            .to_json()
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            // The same object twice: written once.
            let response = self.response(None);
            emit_response(out, &mut self.seq, "response.created", &response);
            emit_response(out, &mut self.seq, "response.in_progress", &response);
        }
    }

    /// The event counter and the [`locator`] of message `i` (the open message, whose locator
    /// is kept), for its content events.
    fn located(&mut self, i: usize) -> (&mut u64, &[u8]) {
        if self.locator.as_ref().is_none_or(|(at, _)| *at != i) {
            self.locator = Some((i, locator(self.builder.item_id(i), i)));
        }
        let locator = self.locator.as_ref().map_or(&[][..], |(_, l)| l.as_slice());
        (&mut self.seq, locator)
    }

    /// The open message's index, announcing it if it is new.
    fn message(&mut self, out: &mut Vec<u8>) -> usize {
        let (i, opened) = self.builder.message();
        if opened {
            let kind = "response.output_item.added";
            write_event_with(out, Some(kind), |out| {
                open_event(out, &mut self.seq, kind);
                out.extend_from_slice(br#","output_index":"#);
                json(out, &i);
                out.extend_from_slice(br#","item":{"id":"#);
                json(out, self.builder.item_id(i));
                out.extend_from_slice(
                    br#","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
                );
            });
            let (seq, locator) = self.located(i);
            emit_content(out, seq, "response.content_part.added", locator, |out| {
                out.extend_from_slice(
                    br#""part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}"#,
                )
            });
        }
        i
    }

    /// Completes the open message: its text, its part and the item.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(i) = self.builder.close() else {
            return;
        };
        let locator = match self.locator.take() {
            Some((at, l)) if at == i => l,
            _ => locator(self.builder.item_id(i), i),
        };
        let Some(item @ OutputItem::Message { content, .. }) = self.builder.output.get(i) else {
            return;
        };
        if let Some(part) = content.first() {
            // The text, escaped once for the two events that repeat it.
            let mut text = Vec::with_capacity(part.text.len() + 2);
            json(&mut text, part.text.as_str());
            emit_content(
                out,
                &mut self.seq,
                "response.output_text.done",
                &locator,
                |out| {
                    out.extend_from_slice(br#""text":"#);
                    out.extend_from_slice(&text);
                    out.extend_from_slice(br#","logprobs":[]"#);
                },
            );
            emit_content(
                out,
                &mut self.seq,
                "response.content_part.done",
                &locator,
                |out| {
                    out.extend_from_slice(br#""part":{"type":"output_text","text":"#);
                    out.extend_from_slice(&text);
                    out.extend_from_slice(br#","annotations":"#);
                    json(out, &part.annotations);
                    out.extend_from_slice(br#","logprobs":[]}"#);
                },
            );
        }
        let done = Item {
            output_index: i,
            item,
        };
        emit(out, &mut self.seq, "response.output_item.done", done);
    }
}

impl SseEncoder for EventWriter {
    fn piece(&mut self, piece: Piece, out: &mut Vec<u8>) {
        self.start(out);
        match piece {
            Piece::Text(t) => {
                let i = self.message(out);
                self.builder.text(&t);
                let (seq, locator) = self.located(i);
                emit_content(out, seq, "response.output_text.delta", locator, |out| {
                    out.extend_from_slice(br#""delta":"#);
                    json(out, t.as_str());
                    out.extend_from_slice(br#","logprobs":[]"#);
                });
            }
            Piece::Citations { annotations, .. } => {
                let i = self.message(out);
                let added: Vec<UrlCitation> =
                    annotations.iter().cloned().map(UrlCitation::from).collect();
                let first = self.builder.annotations(annotations);
                let (seq, locator) = self.located(i);
                for (k, annotation) in added.iter().enumerate() {
                    emit_content(
                        out,
                        seq,
                        "response.output_text.annotation.added",
                        locator,
                        |out| {
                            out.extend_from_slice(br#""annotation_index":"#);
                            json(out, &(first + k));
                            out.extend_from_slice(br#","annotation":"#);
                            json(out, annotation);
                        },
                    );
                }
            }
            Piece::ToolCalls(calls) => {
                self.close(out);
                for call in calls {
                    let i = self.builder.call(call);
                    let Some(
                        item @ OutputItem::FunctionCall {
                            id,
                            call_id,
                            name,
                            arguments,
                            ..
                        },
                    ) = self.builder.output.get(i)
                    else {
                        continue;
                    };
                    let added = OpenedCall {
                        id,
                        kind: "function_call",
                        status: "in_progress",
                        call_id,
                        name,
                        arguments: "",
                    };
                    let (seq, output_index) = (&mut self.seq, i);
                    let item_id = id.as_str();
                    emit(
                        out,
                        seq,
                        "response.output_item.added",
                        Item {
                            output_index,
                            item: added,
                        },
                    );
                    let delta = ArgumentsDelta {
                        item_id,
                        output_index,
                        delta: arguments,
                    };
                    emit(out, seq, "response.function_call_arguments.delta", delta);
                    let done = ArgumentsDone {
                        item_id,
                        output_index,
                        name,
                        arguments,
                    };
                    emit(out, seq, "response.function_call_arguments.done", done);
                    emit(
                        out,
                        seq,
                        "response.output_item.done",
                        Item { output_index, item },
                    );
                }
            }
            Piece::Files(files) => self.builder.files.extend(files),
            Piece::Trace(t) => self.builder.traces.push(t),
            Piece::End(ending) => {
                self.close(out);
                let kind = match ending.finish {
                    Finish::ContentFilter => "response.incomplete",
                    Finish::Stop | Finish::ToolCalls => "response.completed",
                };
                let response = self.response(Some(&ending));
                emit_response(out, &mut self.seq, kind, &response);
            }
        }
    }

    fn error(&mut self, e: &Error, out: &mut Vec<u8>) {
        self.start(out);
        let code = if e.status_code() == 429 {
            "rate_limit_exceeded"
        } else {
            "server_error"
        };
        let mut response =
            self.builder
                .response(&self.meta, &self.ctx.echo, &self.session_id, None, false);
        response.status = "failed";
        response.error = Some(json!({"code": code, "message": e.to_string()}));
        emit_response(out, &mut self.seq, "response.failed", &response.to_json());
        emit(
            out,
            &mut self.seq,
            "error",
            json!({"code": e.code(), "message": e.to_string(), "param": e.param()}),
        );
    }
}
