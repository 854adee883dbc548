//! The Anthropic Messages API door: `POST /v1/messages`.
//!
//! - `system` (a string or text blocks) is the system prompt; `messages` hold `text`,
//!   `tool_use` (assistant history: canonical tool calls) and `tool_result` blocks (answers to
//!   a return of control: canonical `tool` messages); other blocks (images, documents,
//!   thinking) do not reach an agent.
//! - `max_tokens` is required by the format (a 400 without it) and accepted, not sent, as are
//!   sampling, `stop_sequences`, `tools`, `tool_choice`, `thinking` and `metadata`
//!   (`user_id`). Every other field is a parameter, as in the Chat door (`session_id`,
//!   `include_trace`, agent parameters).
//! - Authentication takes `x-api-key` (Anthropic's SDKs) or `Authorization: Bearer`.
//! - Errors are Anthropic's: `{"type": "error", "error": {"type", "message"}}` with its
//!   status codes ([`types::error_kind`]).

pub mod stream;
pub mod types;

use super::common::{self, bad};
use super::{AnswerMeta, Completed, Door, Parsed};
use crate::error::{ProxyError, Result};
use agentbridge::Message;
use agentbridge::canonical::{AgentRequest, Answer, Piece};
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value};
use types::{Block, Citation};

/// The Messages API door.
#[derive(Debug)]
pub struct Messages;

/// Fields of the format: read here or accepted and not sent.
const DOOR_FIELDS: &[&str] = &[
    "messages",
    "system",
    "max_tokens",
    "stream",
    "metadata",
    "stop_sequences",
    "temperature",
    "top_k",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
];

impl Door for Messages {
    const NAME: &'static str = "messages";
    type Ctx = ();
    type Encoder = stream::EventWriter;

    fn parse(body: &[u8], _headers: &HeaderMap) -> Result<Parsed<()>> {
        let (model, obj) = common::json_object(body)?;
        match obj.get("max_tokens") {
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => {}
            None | Some(Value::Null) => {
                return Err(bad("max_tokens: Field required", Some("max_tokens")));
            }
            Some(_) => {
                return Err(bad(
                    "max_tokens must be a positive integer",
                    Some("max_tokens"),
                ));
            }
        }
        let stream = common::flag(&obj, "stream")?;
        let messages = messages(&obj)?;
        Ok(Parsed {
            model,
            request: common::request(messages, obj, DOOR_FIELDS, stream)?,
            ctx: (),
        })
    }

    async fn complete(
        _ctx: (),
        meta: AnswerMeta,
        request: &AgentRequest,
        answer: Answer,
    ) -> agentbridge::Result<Completed> {
        let Answer {
            session_id,
            mut pieces,
        } = answer;
        let mut blocks: Vec<Block> = Vec::new();
        // The whole answer's text: citations give their span as character offsets in it.
        let mut all_text = String::new();
        let (mut traces, mut files) = (Vec::new(), Vec::new());
        let mut ending = None;
        while let Some(piece) = pieces.next().await {
            match piece? {
                Piece::Text(t) => {
                    all_text.push_str(&t);
                    match blocks.last_mut() {
                        Some(Block::Text { text, .. }) => text.push_str(&t),
                        _ => blocks.push(Block::Text {
                            text: t,
                            citations: None,
                        }),
                    }
                }
                Piece::Citations { annotations, .. } => {
                    if !matches!(blocks.last(), Some(Block::Text { .. })) {
                        blocks.push(Block::Text {
                            text: String::new(),
                            citations: None,
                        });
                    }
                    if let Some(Block::Text { citations, .. }) = blocks.last_mut() {
                        let list = citations.get_or_insert_with(Vec::new);
                        for a in annotations {
                            let span = a.url_citation.start_index..a.url_citation.end_index;
                            let cited: String =
                                all_text.chars().skip(span.start).take(span.len()).collect();
                            list.push(Citation::new(a, cited));
                        }
                    }
                }
                Piece::ToolCalls(calls) => blocks.extend(calls.into_iter().map(Block::tool_use)),
                Piece::Files(f) => files.extend(f),
                Piece::Trace(t) => traces.push(t),
                Piece::End(e) => {
                    ending = Some(e);
                    break;
                }
            }
        }
        let ending = ending.ok_or_else(agentbridge::completion::missing_end)?;
        let id = message_id(&meta);
        let message = types::Message {
            id: &id,
            kind: "message",
            role: "assistant",
            model: &meta.model,
            content: &blocks,
            stop_reason: Some(types::stop_reason(ending.finish)),
            stop_sequence: None,
            usage: types::Usage::of(&ending),
            usage_reported: (!ending.usage_reported).then_some(false),
            session_id: &session_id,
            trace: request.options.include_trace.then_some(traces.as_slice()),
            files: &files,
        };
        Completed::json(&message, 512, ending.outcome)
    }

    fn encoder(
        _ctx: (),
        meta: AnswerMeta,
        request: &AgentRequest,
        session_id: &str,
    ) -> stream::EventWriter {
        stream::EventWriter::new(
            message_id(&meta),
            meta,
            session_id,
            request.options.include_trace,
        )
    }

    fn error_response(e: ProxyError) -> Response {
        let (status, kind) = types::error_kind(&e);
        let body = types::error_body(kind, &e.to_string()).to_string();
        // The shared response keeps its headers (`x-should-retry`, `retry-after`).
        let mut r = e.into_response();
        *r.status_mut() = status;
        *r.body_mut() = Body::from(body);
        r
    }
}

fn message_id(meta: &AnswerMeta) -> String {
    format!("msg_{}", meta.request_id.replace('-', ""))
}

/// `system` and `messages` as the canonical conversation.
fn messages(obj: &Map<String, Value>) -> Result<Vec<Message>> {
    let mut out = Vec::new();
    if let Some(system) = obj.get("system").filter(|v| !v.is_null()) {
        let text = common::text(system, "system")?;
        if !text.is_empty() {
            out.push(Message::new("system", text));
        }
    }
    let list = match obj.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => {
            return Err(bad(
                "messages must contain at least one message",
                Some("messages"),
            ));
        }
        None | Some(Value::Null) => {
            return Err(bad("messages: Field required", Some("messages")));
        }
        Some(_) => return Err(bad("messages must be a list of messages", Some("messages"))),
    };
    for (i, m) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(m) = m else {
            return Err(bad(format!("{at} must be a message object"), Some(&at)));
        };
        let role = common::str_field(m, "role", &at)?;
        if !matches!(role, "user" | "assistant") {
            return Err(bad(
                format!("{at}.role {role:?} is not one of user, assistant"),
                Some(&format!("{at}.role")),
            ));
        }
        message_into(
            &mut out,
            role,
            m.get("content").unwrap_or(&Value::Null),
            &at,
        )?;
    }
    Ok(out)
}

/// One message's content blocks, appended to the conversation: tool results first (as `tool`
/// messages), then the text, then tool calls on the assistant's message.
fn message_into(out: &mut Vec<Message>, role: &str, content: &Value, at: &str) -> Result<()> {
    let Value::Array(blocks) = content else {
        out.push(Message::new(
            role,
            common::text(content, &format!("{at}.content"))?,
        ));
        return Ok(());
    };
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let Value::Object(b) = b else {
            return Err(bad(format!("{at} must be a content block"), Some(&at)));
        };
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push(common::str_field(b, "text", &at)?.to_string()),
            Some("tool_use") => {
                let input = b.get("input").cloned().unwrap_or(Value::Object(Map::new()));
                calls.push(common::tool_call(
                    common::str_field(b, "id", &at)?.to_string(),
                    common::str_field(b, "name", &at)?.to_string(),
                    input.to_string(),
                ));
            }
            Some("tool_result") => {
                let id = common::str_field(b, "tool_use_id", &at)?.to_string();
                let result = b.get("content").unwrap_or(&Value::Null);
                out.push(common::tool_result(
                    id,
                    common::text(result, &format!("{at}.content"))?,
                ));
            }
            // Images, documents, thinking: nothing an agent's text input can carry.
            Some(_) => {}
            None => {
                return Err(bad(
                    format!("{at}.type is required"),
                    Some(&format!("{at}.type")),
                ));
            }
        }
    }
    if !text.is_empty() || calls.is_empty() && role == "assistant" {
        out.push(Message::new(role, text.join("\n")));
    }
    for call in calls {
        common::push_tool_call(out, call);
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
