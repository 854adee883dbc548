//! Scripted AgentCore behaviours, chosen by `emulate:NAME` or `emulate:NAME=ARG` tokens in
//! any string of the JSON payload (or anywhere in a payload that is not JSON). Several may
//! be combined.
//!
//! Errors (they come from AWS, before the agent runs, so they apply to forwarded runtimes too):
//!
//! | token | behaviour |
//! |---|---|
//! | `emulate:error=NAME` | answers the model's error NAME with its status: `ValidationException` 400, `UnauthorizedException` 401, `ServiceQuotaExceededException` 402, `AccessDeniedException` 403, `ResourceNotFoundException` 404, `ConflictException` 409, `RetryableConflictException` 409, `RuntimeClientError` 424, `ThrottlingException` 429, `InternalServerException` 500 (no argument: InternalServerException) |
//! | `emulate:retryable_conflict_once` | the first call of the session gets RetryableConflictException (409), the next ones go through |
//! | `emulate:retryable_conflict=N` | the first N calls of the session get RetryableConflictException |
//!
//! Answers (scripted runtimes only; a forwarded runtime's agent answers for itself):
//!
//! | token | behaviour |
//! |---|---|
//! | (none) | `application/json`: `{"result": {"role": "assistant", "content": [{"text": ...}], "metadata": {"usage": ...}}}` as a Strands agent returning `{"result": result.message}` does |
//! | `emulate:json=SHAPE` | another JSON body: `strands` (the default above), `message` (`{"message": {"content": [{"text"}]}}`), `a2a` (JSON-RPC `result.message.parts[].text`), `content` (`{"result": {"content": [{"text"}]}}`), `response` (`{"response": [{"text"}]}`), `result_string` (`{"result": "..."}`), `response_string` (`{"response": "..."}`), `string` (a JSON string), `other` (`{"answer": ...}`: no known shape) |
//! | `emulate:sse` | `text/event-stream` of Strands raw events, as `yield event` from `agent.stream_async` puts them on the wire: each text delta both as `{"event": {"contentBlockDelta": ...}}` and as a Python-repr string, per model call `messageStop` and `{"event": {"metadata": {"usage"}}}`, then `{"message": ...}` and the repr of the result |
//! | `emulate:sse_text` | `text/event-stream` of JSON strings, one per delta (`data: "Hello"`), as an entrypoint yielding text does |
//! | `emulate:calls=N` | the agent makes N model calls (N-1 tool calls, then the answer): with `sse`, N usage events; in JSON, the last call's usage (as Strands' `result.message` has it) |
//! | `emulate:midstream_error` | (with `sse` or `sse_text`, which it implies) two deltas, then the `{"error", "error_type", "message"}` event BedrockAgentCoreApp sends when the entrypoint raises, and the end |
//! | `emulate:stall` | (with `sse` or `sse_text`, which it implies) two deltas, then nothing more, the connection held open |
//! | `emulate:slow=MS` | waits MS milliseconds (default 200, at most 60000) before each event, or before a JSON body |
//!
//! A prompt containing "what did I say" is answered with the session's earlier prompts.

use super::errors::ErrorKind;
use serde_json::Value;

/// The JSON body shapes of `emulate:json=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JsonShape {
    /// `{"result": <Strands message>}`.
    #[default]
    Strands,
    /// `{"message": {"content": [{"text"}]}}`.
    Message,
    /// A2A JSON-RPC: `{"jsonrpc", "id", "result": {"message": {"parts": [{"kind": "text", "text"}]}}}`.
    A2a,
    /// `{"result": {"content": [{"text"}]}}`.
    Content,
    /// `{"response": [{"text"}]}`.
    Response,
    /// `{"result": "..."}`.
    ResultString,
    /// `{"response": "..."}`.
    ResponseString,
    /// `"..."`.
    String,
    /// `{"answer": "..."}`: a shape no reader knows.
    Other,
}

/// How the answer is put on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON body.
    #[default]
    Json,
    /// SSE of Strands raw events.
    SseEvents,
    /// SSE of JSON strings.
    SseText,
}

/// What the payload asks the emulator to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// An error answer instead of the agent's.
    pub error: Option<ErrorKind>,
    /// An `emulate:error=` name the model does not have.
    pub unknown_error: Option<String>,
    /// RetryableConflictException for the first N calls of the session.
    pub retryable_conflicts: u32,
    /// Wire format.
    pub format: Format,
    /// JSON body shape.
    pub json: JsonShape,
    /// Model calls the agent makes (at least 1).
    pub calls: u32,
    /// An error event after two deltas.
    pub midstream_error: bool,
    /// Nothing more after two deltas; the connection held open.
    pub stall: bool,
    /// Delay before each event, in ms.
    pub slow_ms: u64,
}

/// The most model calls `emulate:calls` gives.
pub const MAX_CALLS: u32 = 20;

impl Script {
    /// Reads the tokens in every string of `payload` (JSON) or in the raw text.
    pub fn from_payload(payload: &[u8]) -> Self {
        let mut texts = Vec::new();
        match serde_json::from_slice::<Value>(payload) {
            Ok(v) => strings(&v, &mut texts),
            Err(_) => texts.push(String::from_utf8_lossy(payload).into_owned()),
        }
        let mut s = Script {
            calls: 1,
            ..Self::default()
        };
        for t in &texts {
            s.read(t);
        }
        if (s.midstream_error || s.stall) && s.format == Format::Json {
            s.format = Format::SseText;
        }
        s
    }

    fn read(&mut self, text: &str) {
        for token in text.split_whitespace() {
            let Some(rest) = token.strip_prefix("emulate:") else {
                continue;
            };
            let rest = rest.trim_end_matches(['.', ',', ';', ')', ']', '"', '\'']);
            let (name, arg) = rest.split_once('=').unwrap_or((rest, ""));
            match name {
                "error" => {
                    let arg = if arg.is_empty() {
                        "InternalServerException"
                    } else {
                        arg
                    };
                    match ErrorKind::from_name(arg) {
                        Some(k) => self.error = Some(k),
                        None => self.unknown_error = Some(arg.to_string()),
                    }
                }
                "retryable_conflict_once" => self.retryable_conflicts = 1,
                "retryable_conflict" => self.retryable_conflicts = arg.parse().unwrap_or(1),
                "sse" => self.format = Format::SseEvents,
                "sse_text" => self.format = Format::SseText,
                "json" => {
                    self.format = Format::Json;
                    self.json = match arg {
                        "message" => JsonShape::Message,
                        "a2a" => JsonShape::A2a,
                        "content" => JsonShape::Content,
                        "response" => JsonShape::Response,
                        "result_string" => JsonShape::ResultString,
                        "response_string" => JsonShape::ResponseString,
                        "string" => JsonShape::String,
                        "other" => JsonShape::Other,
                        _ => JsonShape::Strands,
                    }
                }
                "calls" => self.calls = arg.parse().unwrap_or(1).clamp(1, MAX_CALLS),
                "midstream_error" => self.midstream_error = true,
                "stall" => self.stall = true,
                "slow" => self.slow_ms = arg.parse().unwrap_or(200).min(60_000),
                _ => {}
            }
        }
    }
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_payloads_are_json_answers() {
        let s = Script::from_payload(br#"{"prompt": "hello"}"#);
        assert_eq!(
            (s.format, s.json, s.calls, s.error),
            (Format::Json, JsonShape::Strands, 1, None)
        );
    }

    #[test]
    fn tokens_are_read_in_any_string_of_the_payload() {
        let s = Script::from_payload(
            br#"{"prompt": "hi emulate:sse", "context": {"notes": ["emulate:calls=3", "emulate:slow=5."]}}"#,
        );
        assert_eq!((s.format, s.calls, s.slow_ms), (Format::SseEvents, 3, 5));
        let s = Script::from_payload(br#"{"prompt": "emulate:error=ThrottlingException"}"#);
        assert_eq!(s.error, Some(ErrorKind::Throttling));
        let s = Script::from_payload(br#"{"prompt": "emulate:error=Bogus"}"#);
        assert_eq!((s.error, s.unknown_error.as_deref()), (None, Some("Bogus")));
        let s = Script::from_payload(b"not json emulate:retryable_conflict_once");
        assert_eq!(s.retryable_conflicts, 1);
        let s = Script::from_payload(br#"{"prompt": "emulate:midstream_error emulate:calls=999"}"#);
        assert_eq!(
            (s.format, s.midstream_error, s.calls),
            (Format::SseText, true, MAX_CALLS)
        );
        let s = Script::from_payload(br#"{"prompt": "emulate:json=a2a"}"#);
        assert_eq!(s.json, JsonShape::A2a);
    }
}
