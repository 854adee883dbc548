//! An AgentCore agent's answer -> [`Piece`]s (pure).
//!
//! JSON bodies ([`json_answer`]): the text of the first shape that matches, in this order:
//! A2A JSON-RPC `result.message.parts[].text`, `{"result": {"content": [{"text"}]}}`
//! (Strands' `{"result": result.message}`), `{"message": {"content": [{"text"}]}}`,
//! `{"response": [{"text"}]}`, `result` or `response` as a string, a JSON string; any other
//! JSON is the answer as its raw JSON text. Usage from the message's `metadata.usage`.
//!
//! SSE events ([`SseAnswer`]), one `data` at a time:
//! - Strands raw model events: `{"event": {"contentBlockDelta": {"delta": {"text"}}}}` is
//!   text; `{"event": {"metadata": {"usage"}}}` comes once per model call and is SUMMED;
//!   the last `{"event": {"messageStop": {"stopReason"}}}` sets the finish;
//! - a JSON string is text (an entrypoint yielding text), except the Python `repr()` of a
//!   Strands event (`"{'data': 'Hi', 'delta': ..., 'agent': <...>}"`), which Strands'
//!   fallback serialisation sends beside the JSON events: never shown; once Strands' text
//!   deltas have carried text, JSON strings are not text any more (they repeat it);
//! - tool use (`contentBlockStart` with `toolUse`, and `message` events holding `toolUse` or
//!   `toolResult`) is the agent's own work: [`Piece::Trace`] when traces were asked for,
//!   never tool calls for the client;
//! - `{"error", "error_type", "message"}` (what BedrockAgentCoreApp sends when the entrypoint
//!   raises) ends the answer with a `RuntimeClientError` error;
//! - Strands' lifecycle events are dropped; anything else is dropped too (a trace when
//!   traces were asked for).
//!
//! Usage is absent (`usage_reported: false`) when the agent reported none; the cost is the
//! deployment's `input_cost_per_token`/`output_cost_per_token` times the reported tokens,
//! and 0 without those prices (an AgentCore runtime's model is unknown to the gateway).

use crate::canonical::{AnswerOptions, Ending, Finish, Outcome, Piece};
use crate::error::{AwsErrorKind, Error, Result};
use crate::openai::Usage;
use crate::pricing::Price;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// Strands' text delta, `{"event": {"contentBlockDelta": {"delta": {"text": T}}}}` (and its
/// `contentBlockIndex`), read straight into this type instead of a `Value` tree: these are
/// half of a streamed answer's events. Any other key anywhere fails the parse, and the event
/// then goes the general way, so the two readings cannot differ.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextDeltaEvent<'a> {
    #[serde(borrow)]
    event: TextDeltaModelEvent<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TextDeltaModelEvent<'a> {
    #[serde(borrow)]
    content_block_delta: TextDeltaBlock<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TextDeltaBlock<'a> {
    #[serde(borrow)]
    delta: TextDelta<'a>,
    /// Allowed, not read (the general way ignores it too).
    #[serde(default, rename = "contentBlockIndex")]
    _index: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextDelta<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The running state of one answer: usage, finish and whether text came.
#[derive(Debug)]
pub struct SseAnswer {
    options: AnswerOptions,
    price: Option<Price>,
    usage: Usage,
    usage_reported: bool,
    finish: Finish,
    text_seen: bool,
    structured_text: bool,
    last_message_text: Option<String>,
}

/// Keys of Strands' stream events, as their Python `repr()` starts (`{'data': ...`).
const STRANDS_REPR_KEYS: &[&str] = &[
    "data",
    "delta",
    "result",
    "message",
    "event",
    "type",
    "init_event_loop",
    "start",
    "start_event_loop",
    "complete",
    "force_stop",
    "force_stop_reason",
    "current_tool_use",
    "tool_stream_event",
    "reasoning",
    "reasoningText",
    "agent",
    "event_loop_cycle_id",
    "callback_handler",
];

/// Strands' event-loop lifecycle events (`{"init_event_loop": true}`, ...): no trace.
const STRANDS_LIFECYCLE: &[&str] = &[
    "init_event_loop",
    "start",
    "start_event_loop",
    "complete",
    "force_stop",
    "force_stop_reason",
];

/// Whether `s` is the Python `repr()` of a Strands event dict rather than text.
pub fn is_python_repr(s: &str) -> bool {
    let t = s.trim();
    let Some(inner) = t.strip_prefix("{'") else {
        return false;
    };
    if !t.ends_with('}') {
        return false;
    }
    inner
        .split_once("': ")
        .is_some_and(|(key, _)| STRANDS_REPR_KEYS.contains(&key))
}

fn usage_of(v: &Value) -> Option<(u64, u64)> {
    let input = v.get("inputTokens").and_then(Value::as_u64);
    let output = v.get("outputTokens").and_then(Value::as_u64);
    (input.is_some() || output.is_some()).then(|| (input.unwrap_or(0), output.unwrap_or(0)))
}

fn content_text(content: &Value) -> Option<String> {
    let parts = content.as_array()?;
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    (!texts.is_empty()).then(|| texts.concat())
}

fn has_tool_work(message: &Value) -> bool {
    message
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|p| p.get("toolUse").is_some() || p.get("toolResult").is_some())
        })
}

impl SseAnswer {
    /// A new answer.
    pub fn new(options: AnswerOptions, price: Option<Price>) -> Self {
        Self {
            options,
            price,
            usage: Usage::default(),
            usage_reported: false,
            finish: Finish::Stop,
            text_seen: false,
            structured_text: false,
            last_message_text: None,
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<Piece>) {
        if !text.is_empty() {
            self.text_seen = true;
            out.push(Piece::Text(text.to_string()));
        }
    }

    fn trace(&self, v: Value, out: &mut Vec<Piece>) {
        if self.options.include_trace {
            out.push(Piece::Trace(v));
        }
    }

    /// Takes one event's `data`, returns what it adds (or the agent's in-band error).
    pub fn accept(&mut self, data: &str) -> Result<Vec<Piece>> {
        let mut out = Vec::new();
        if data.contains("\"contentBlockDelta\"")
            && let Ok(e) = serde_json::from_str::<TextDeltaEvent>(data)
        {
            self.structured_text = true;
            self.text(&e.event.content_block_delta.delta.text, &mut out);
            return Ok(out);
        }
        self.accept_value(data, out)
    }

    /// [`Self::accept`] through a `Value`: every event but text deltas.
    fn accept_value(&mut self, data: &str, mut out: Vec<Piece>) -> Result<Vec<Piece>> {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            // Not JSON: an agent writing plain text lines.
            self.text(data, &mut out);
            return Ok(out);
        };
        match v {
            Value::String(s) if !is_python_repr(&s) && !self.structured_text => {
                self.text(&s, &mut out);
            }
            Value::Object(ref o) => {
                if let Some(event) = o.get("event") {
                    self.model_event(event, &v, &mut out);
                } else if o.contains_key("error")
                    && (o.contains_key("error_type") || o.contains_key("message"))
                {
                    return Err(agent_error(&v));
                } else if let Some(m) = o.get("message").filter(|m| m.is_object()) {
                    if m.get("role").and_then(Value::as_str) == Some("assistant")
                        && let Some(t) = m.get("content").and_then(content_text)
                    {
                        self.last_message_text = Some(t);
                    }
                    if has_tool_work(m) {
                        self.trace(v.clone(), &mut out);
                    }
                } else if !o.keys().all(|k| STRANDS_LIFECYCLE.contains(&k.as_str())) {
                    self.trace(v.clone(), &mut out);
                }
            }
            _ => {}
        }
        Ok(out)
    }

    fn model_event(&mut self, event: &Value, whole: &Value, out: &mut Vec<Piece>) {
        if let Some(delta) = at(event, &["contentBlockDelta", "delta"]) {
            if let Some(t) = delta.get("text").and_then(Value::as_str) {
                self.structured_text = true;
                self.text(t, out);
            }
        } else if let Some(usage) = at(event, &["metadata", "usage"]).and_then(usage_of) {
            self.usage.add(usage.0, usage.1);
            self.usage_reported = true;
        } else if let Some(reason) =
            at(event, &["messageStop", "stopReason"]).and_then(Value::as_str)
        {
            self.finish = finish_of(reason);
        } else if at(event, &["contentBlockStart", "start", "toolUse"]).is_some() {
            self.trace(whole.clone(), out);
        }
    }

    /// The end of the answer: the last assistant message's text if no text came at all,
    /// then the one [`Piece::End`].
    pub fn end(mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        if !self.text_seen
            && let Some(t) = self.last_message_text.take()
        {
            self.text(&t, &mut out);
        }
        out.push(Piece::End(self.ending()));
        out
    }

    fn ending(&self) -> Ending {
        let cost = self.price.map_or(0.0, |p| {
            p.cost(self.usage.prompt_tokens, self.usage.completion_tokens)
        });
        Ending {
            finish: self.finish,
            outcome: Outcome {
                usage: self.usage,
                cost,
            },
            usage_reported: self.usage_reported,
        }
    }
}

/// The value at `keys` (object keys, outermost first), as `Value::pointer` finds it for a
/// pointer made of those keys, without parsing and unescaping a pointer string on every call
/// (that was a tenth of an SSE answer's work).
fn at<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

fn finish_of(stop_reason: &str) -> Finish {
    match stop_reason {
        "guardrail_intervened" | "content_filtered" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

/// The `{"error", "error_type", "message"}` event as a `RuntimeClientError`.
pub fn agent_error(v: &Value) -> Error {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let detail = [text("message"), text("error")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    Error::Aws {
        kind: AwsErrorKind::RuntimeClientError,
        code: match text("error_type") {
            "" => "RuntimeClientError".into(),
            t => format!("RuntimeClientError.{t}"),
        },
        message: if detail.is_empty() {
            "the agent failed while answering".into()
        } else {
            format!("the agent failed while answering: {detail}")
        },
        retry_after: None,
    }
}

/// The pieces of a JSON (or other non-SSE) answer body.
pub fn json_answer(body: &[u8], options: AnswerOptions, price: Option<Price>) -> Vec<Piece> {
    let mut state = SseAnswer::new(options, price);
    let mut out = Vec::new();
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        state.text(&String::from_utf8_lossy(body), &mut out);
        out.extend(state.end());
        return out;
    };
    let (text, message) = read_shapes(&v);
    let text = text.unwrap_or_else(|| v.to_string());
    state.text(&text, &mut out);
    if let Some((input, output)) = message
        .and_then(|m| at(m, &["metadata", "usage"]))
        .and_then(usage_of)
    {
        state.usage.add(input, output);
        state.usage_reported = true;
    }
    out.extend(state.end());
    out
}

/// The answer text of a JSON body, in the documented order, and the message it came from.
fn read_shapes(v: &Value) -> (Option<String>, Option<&Value>) {
    if let Some(parts) = at(v, &["result", "message", "parts"]) {
        return (content_text(parts), at(v, &["result", "message"]));
    }
    if let Some(t) = at(v, &["result", "content"]).and_then(content_text) {
        return (Some(t), v.get("result"));
    }
    if let Some(t) = at(v, &["message", "content"]).and_then(content_text) {
        return (Some(t), v.get("message"));
    }
    if let Some(t) = v.get("response").and_then(content_text) {
        return (Some(t), None);
    }
    for key in ["result", "response"] {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            return (Some(s.to_string()), None);
        }
    }
    (v.as_str().map(str::to_string), None)
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
