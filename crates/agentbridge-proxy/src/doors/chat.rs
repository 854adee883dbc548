//! The Chat Completions door: `POST /v1/chat/completions` (and `/chat/completions`).
//!
//! The wire types and the pieces -> `chat.completion` / `chat.completion.chunk` mapping are
//! the SDK's ([`agentbridge::completion`]); this module parses a request body naming the
//! field at fault, and writes chunks as `data:` events ending with `data: [DONE]`, or an
//! in-band `data: {"error": ...}` (no `[DONE]`; OpenAI SDKs raise on it).

use super::common::bad;
use super::{AnswerMeta, Completed, Door, Parsed};
use crate::error::{ProxyError, Result};
use crate::sse::{SseEncoder, write_event, write_event_with};
use agentbridge::canonical::{AgentRequest, Answer, Piece};
use agentbridge::completion::{self, ChunkMapper, ResponseMeta};
use agentbridge::params::is_deployment_param;
use agentbridge::{ChatChunk, ChatRequest, Error};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The Chat Completions door.
#[derive(Debug)]
pub struct Chat;

/// The end marker.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

impl Door for Chat {
    const NAME: &'static str = "chat";
    type Ctx = ();
    type Encoder = ChunkWriter;

    fn parse(body: &[u8], _headers: &HeaderMap) -> Result<Parsed<()>> {
        let mut req = parse_chat(body)?;
        let model = std::mem::take(&mut req.model);
        Ok(Parsed {
            model,
            request: completion::agent_request(req)?,
            ctx: (),
        })
    }

    async fn complete(
        _ctx: (),
        meta: AnswerMeta,
        request: &AgentRequest,
        answer: Answer,
    ) -> agentbridge::Result<Completed> {
        let completion = completion::fold(response_meta(meta), answer, request.options).await?;
        let outcome = agentbridge::canonical::Outcome {
            usage: completion.usage.unwrap_or_default(),
            cost: completion.response_cost,
        };
        // Sized for a typical answer, so the JSON is written without regrowing.
        Completed::json(&completion, 512 + completion.choices.len() * 256, outcome)
    }

    fn encoder(
        _ctx: (),
        meta: AnswerMeta,
        request: &AgentRequest,
        session_id: &str,
    ) -> ChunkWriter {
        ChunkWriter {
            mapper: ChunkMapper::new(response_meta(meta), session_id.to_string(), request.options),
            chunks: Vec::with_capacity(2),
            text: TextChunks::default(),
        }
    }

    fn error_response(e: ProxyError) -> Response {
        e.into_response()
    }
}

fn response_meta(meta: AnswerMeta) -> ResponseMeta {
    ResponseMeta {
        id: completion_id(&meta.request_id),
        created: meta.created,
        model: meta.model,
    }
}

/// `chatcmpl-` and the request id without its hyphens (OpenAI's ids have none).
fn completion_id(request_id: &str) -> String {
    let mut id = String::with_capacity(9 + request_id.len());
    id.push_str("chatcmpl-");
    for part in request_id.split('-') {
        id.push_str(part);
    }
    id
}

/// Writes chunks as `data:` events.
#[derive(Debug)]
pub struct ChunkWriter {
    mapper: ChunkMapper,
    chunks: Vec<ChatChunk>,
    text: TextChunks,
}

/// Writes the chunks that carry only text (an agent streaming token by token sends one per
/// token) from a start made once per stream, instead of serialising the whole chunk each
/// time: the same bytes as serde's (a test holds them equal).
#[derive(Debug, Default)]
struct TextChunks {
    /// The stream's id, created and model, and the start of its text chunks:
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[{"index":0,"delta":{"content":`.
    start: Option<(String, u64, String, Vec<u8>)>,
}

impl TextChunks {
    /// Writes `c` if it is a text-only chunk (content and perhaps a finish reason, nothing
    /// else); `false` leaves it to the caller.
    fn write(&mut self, c: &ChatChunk, out: &mut Vec<u8>) -> bool {
        let [choice] = c.choices.as_slice() else {
            return false;
        };
        let d = &choice.delta;
        let (Some(content), None, None, None, None, None) = (
            &d.content,
            &d.role,
            &d.tool_calls,
            &d.annotations,
            &d.citations,
            &d.files,
        ) else {
            return false;
        };
        if choice.index != 0
            || c.object != "chat.completion.chunk"
            || c.usage.is_some()
            || c.session_id.is_some()
            || c.trace.is_some()
        {
            return false;
        }
        let fresh = self.start.as_ref().is_none_or(|(id, created, model, _)| {
            *id != c.id || *created != c.created || *model != c.model
        });
        if fresh {
            let mut start = br#"{"id":"#.to_vec();
            json(&mut start, &c.id);
            start.extend_from_slice(br#","object":"chat.completion.chunk","created":"#);
            json(&mut start, &c.created);
            start.extend_from_slice(br#","model":"#);
            json(&mut start, &c.model);
            start.extend_from_slice(br#","choices":[{"index":0,"delta":{"content":"#);
            self.start = Some((c.id.clone(), c.created, c.model.clone(), start));
        }
        let start = self.start.as_ref().map_or(&[][..], |(.., s)| s.as_slice());
        write_event_with(out, None, |out| {
            out.extend_from_slice(start);
            json(out, content);
            out.extend_from_slice(br#"},"finish_reason":"#);
            json(out, &choice.finish_reason);
            out.extend_from_slice(b"}]}");
        });
        true
    }
}

/// Appends `value` as JSON (strings, numbers, options of them: cannot fail into a `Vec`).
fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

impl SseEncoder for ChunkWriter {
    fn piece(&mut self, piece: Piece, out: &mut Vec<u8>) {
        let end = matches!(piece, Piece::End(_));
        self.mapper.map(piece, &mut self.chunks);
        for c in self.chunks.drain(..) {
            if !self.text.write(&c, out) {
                write_event(out, None, &c);
            }
        }
        if end {
            out.extend_from_slice(DONE);
        }
    }

    fn error(&mut self, e: &Error, out: &mut Vec<u8>) {
        write_event(out, None, &e.to_openai_json());
    }
}

/// Parses a chat request, naming the field at fault.
pub fn parse_chat(bytes: &[u8]) -> Result<ChatRequest> {
    // A well-formed request is parsed straight into its type; anything the checks below
    // would refuse (or that does not parse) takes the slower path that names the field.
    if let Ok(req) = agentbridge::json::from_bytes::<ChatRequest>(bytes)
        && !req.model.is_empty()
        && !req.messages.is_empty()
        && !req.extra.keys().any(|k| is_deployment_param(k))
    {
        return Ok(req);
    }
    parse_chat_naming_faults(bytes)
}

/// The request parsed via a JSON value: slower, but every refusal names its field.
fn parse_chat_naming_faults(bytes: &[u8]) -> Result<ChatRequest> {
    let value: Value = agentbridge::json::from_bytes(bytes)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}"), None))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("request body must be a JSON object", None))?;
    match obj.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        None | Some(Value::Null) => {
            return Err(bad("missing required field: model", Some("model")));
        }
        Some(_) => return Err(bad("model must be a non-empty string", Some("model"))),
    }
    match obj.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(bad(
                "messages must contain at least one message",
                Some("messages"),
            ));
        }
        None | Some(Value::Null) => {
            return Err(bad("missing required field: messages", Some("messages")));
        }
        Some(_) => return Err(bad("messages must be a list of messages", Some("messages"))),
    }
    crate::routes::refuse_deployment_params(obj)?;
    serde_path_to_error::deserialize::<_, ChatRequest>(value).map_err(|e| {
        let path = e.path().to_string();
        bad(format!("{path}: {}", e.inner()), Some(&path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn text_chunks_are_written_as_serde_writes_them() {
        use agentbridge::openai::{ChunkChoice, Delta};
        let chunk = |content: Option<&str>, finish: Option<&str>, model: &str| ChatChunk {
            id: "chatcmpl-0123\"abc".into(),
            object: "chat.completion.chunk".into(),
            created: 1_795_796_548,
            model: model.into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    content: content.map(str::to_string),
                    ..Delta::default()
                },
                finish_reason: finish.map(str::to_string),
            }],
            usage: None,
            session_id: None,
            trace: None,
        };
        let mut text = TextChunks::default();
        for (content, finish, model) in [
            ("Hello", None, "agent-1"),
            (" w\u{f6}rld \"quoted\" \\ \n\t\u{1}", None, "agent-1"),
            ("", Some("stop"), "agent-1"),
            ("x", Some("content_filter"), "another model"),
            ("\u{1F600}", None, "agent-1"),
        ] {
            let c = chunk(Some(content), finish, model);
            let (mut ours, mut serde) = (Vec::new(), Vec::new());
            assert!(text.write(&c, &mut ours));
            write_event(&mut serde, None, &c);
            assert_eq!(String::from_utf8(ours), String::from_utf8(serde));
        }
        // Anything but text alone is serialised whole.
        let mut with_role = chunk(Some("a"), None, "m");
        with_role.choices[0].delta.role = Some("assistant".into());
        let mut with_session = chunk(Some("a"), None, "m");
        with_session.session_id = Some("s".into());
        let mut two = chunk(Some("a"), None, "m");
        two.choices.push(two.choices[0].clone());
        for c in [chunk(None, Some("stop"), "m"), with_role, with_session, two] {
            assert!(!text.write(&c, &mut Vec::new()));
        }
    }

    #[test]
    fn completion_ids_are_the_request_id_without_hyphens() {
        let request_id = uuid::Uuid::new_v4();
        assert_eq!(
            completion_id(&request_id.to_string()),
            format!("chatcmpl-{}", request_id.simple())
        );
        assert_eq!(completion_id("abc"), "chatcmpl-abc");
        assert_eq!(completion_id("-a--b-"), "chatcmpl-ab");
    }

    #[test]
    fn parse_errors_name_the_field() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("{", None, "not valid JSON"),
            ("[]", None, "JSON object"),
            (
                r#"{"messages": [{"role": "user", "content": "x"}]}"#,
                Some("model"),
                "model",
            ),
            (r#"{"model": "m"}"#, Some("messages"), "messages"),
            (
                r#"{"model": "m", "messages": []}"#,
                Some("messages"),
                "at least one",
            ),
            (
                r#"{"model": "m", "messages": "hi"}"#,
                Some("messages"),
                "list",
            ),
            (
                r#"{"model": "m", "messages": [{"content": "x"}]}"#,
                Some("messages[0]"),
                "role",
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "aws_access_key_id": "AK"}"#,
                Some("aws_access_key_id"),
                "config",
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "api_base": "http://169.254.169.254"}"#,
                Some("api_base"),
                "config",
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}"#,
                Some("stream"),
                "stream",
            ),
        ];
        for (body, param, needle) in cases {
            let e = parse_chat(body.as_bytes()).unwrap_err();
            let j = e.body();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(j["error"]["param"].as_str(), *param, "{body}: {j}");
            assert!(
                j["error"]["message"].as_str().unwrap().contains(needle),
                "{body}: {j}"
            );
        }
    }

    #[test]
    fn the_direct_parse_agrees_with_the_field_naming_one() {
        let bodies = [
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#,
            r#"{"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "x"}]}], "stream": true, "stream_options": {"include_usage": true}}"#,
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": null, "temperature": 0.2, "sessionState": {"sessionAttributes": {"a": "b"}}, "memoryId": "m1", "n": 18446744073709551615}"#,
            r#"{"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c", "content": "r"}]}"#,
            r#"{"model": "m", "model": "m2", "messages": [{"role": "user", "content": "x"}]}"#,
        ];
        for body in bodies {
            let fast = serde_json::to_value(parse_chat(body.as_bytes()).unwrap()).unwrap();
            let slow =
                serde_json::to_value(parse_chat_naming_faults(body.as_bytes()).unwrap()).unwrap();
            assert_eq!(fast, slow, "{body}");
        }
    }

    #[test]
    fn a_clean_stream_ends_with_done_and_an_error_without_it() {
        let meta = AnswerMeta {
            request_id: "r-1".into(),
            model: "m".into(),
            created: 1,
            deployment: "m/0".into(),
        };
        let req = AgentRequest::new(vec![]);
        let mut w = Chat::encoder((), meta.clone(), &req, "s");
        let mut out = Vec::new();
        w.piece(Piece::Text("hi".into()), &mut out);
        w.piece(Piece::End(Default::default()), &mut out);
        let text = String::from_utf8(out).unwrap();
        let events: Vec<&str> = text.split_terminator("\n\n").collect();
        assert_eq!(events.len(), 3, "{text}");
        assert!(events[0].starts_with("data: {") && events[0].contains("\"content\":\"hi\""));
        assert!(events[1].contains("\"finish_reason\":\"stop\""));
        assert_eq!(format!("{}\n\n", events[2]).as_bytes(), DONE);

        let mut w = Chat::encoder((), meta, &req, "s");
        let mut out = Vec::new();
        w.error(&Error::Timeout("slow".into()), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("data: {\"error\""), "{text}");
        assert!(!text.contains("[DONE]"));
    }
}
