//! The Responses API door: `POST /v1/responses` (and `/responses`).
//!
//! - `input` is a string (one user message) or a list of items: messages (`type: message`,
//!   or `{role, content}` without a type as the Agents SDK sends them) whose content is a
//!   string or `input_text` / `output_text` parts; `function_call` items (history) and
//!   `function_call_output` items (answers to a return of control: canonical `tool`
//!   messages). `instructions` is the system prompt.
//! - `previous_response_id` continues the agent session of that response: response ids
//!   carry their session and deployment ([`id::ResponseRef`]), so no database is needed and
//!   any instance can take the follow-up; the session becomes the request's `session_id`.
//!   `store` is accepted with that meaning. Responses are not stored: `GET
//!   /v1/responses/{id}` is a 404 saying so ([`retrieve`]).
//! - Sampling, `tools`, `tool_choice`, `include`, `metadata`, `user` and the like are accepted
//!   and not sent (echoed in the response as the format does). Every other field is a
//!   parameter, as in the Chat door (`session_id`, `include_trace`, agent parameters).
//! - Errors are OpenAI's (the same as Chat Completions').

pub mod id;
pub mod stream;
pub mod types;

use super::common::{self, bad};
use super::{AnswerMeta, Completed, Door, Parsed};
use crate::error::{ProxyError, Result};
use agentbridge::Message;
use agentbridge::canonical::{AgentRequest, Answer, Piece};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value};

/// The Responses API door.
#[derive(Debug)]
pub struct Responses;

/// What the door keeps from the request for its response.
#[derive(Debug, Default)]
pub struct Ctx {
    /// The request fields the response object repeats, with the format's defaults.
    pub echo: types::Echo,
}

/// Fields of the format: read here or accepted and not sent.
const DOOR_FIELDS: &[&str] = &[
    "input",
    "instructions",
    "previous_response_id",
    "stream",
    "stream_options",
    "store",
    "metadata",
    "user",
    "tools",
    "tool_choice",
    "include",
    "temperature",
    "top_p",
    "top_logprobs",
    "max_output_tokens",
    "max_tool_calls",
    "parallel_tool_calls",
    "truncation",
    "reasoning",
    "text",
    "service_tier",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "background",
];

impl Door for Responses {
    const NAME: &'static str = "responses";
    type Ctx = Ctx;
    type Encoder = stream::EventWriter;

    fn parse(body: &[u8], _headers: &HeaderMap) -> Result<Parsed<Ctx>> {
        let (model, mut obj) = common::json_object(body)?;
        if common::flag(&obj, "background")? {
            return Err(bad(
                "background responses are not supported: responses are not stored",
                Some("background"),
            ));
        }
        if obj.get("conversation").is_some_and(|v| !v.is_null()) {
            return Err(bad(
                "conversation is not supported: continue a conversation with previous_response_id",
                Some("conversation"),
            ));
        }
        let stream = common::flag(&obj, "stream")?;
        let messages = messages(&obj)?;
        continue_session(&mut obj)?;
        let ctx = Ctx {
            echo: types::Echo::new(&obj),
        };
        let request = common::request(messages, obj, DOOR_FIELDS, stream)?;
        Ok(Parsed {
            model,
            request,
            ctx,
        })
    }

    async fn complete(
        ctx: Ctx,
        meta: AnswerMeta,
        request: &AgentRequest,
        answer: Answer,
    ) -> agentbridge::Result<Completed> {
        let Answer {
            session_id,
            mut pieces,
        } = answer;
        let mut b = types::Builder::new(&meta, &session_id);
        let mut ending = None;
        while let Some(piece) = pieces.next().await {
            match piece? {
                Piece::Text(t) => b.text(&t),
                Piece::Citations { annotations, .. } => {
                    b.annotations(annotations);
                }
                Piece::ToolCalls(calls) => {
                    for c in calls {
                        b.call(c);
                    }
                }
                Piece::Files(f) => b.files.extend(f),
                Piece::Trace(t) => b.traces.push(t),
                Piece::End(e) => {
                    ending = Some(e);
                    break;
                }
            }
        }
        let ending = ending.ok_or_else(agentbridge::completion::missing_end)?;
        b.close();
        let response = b.response(
            &meta,
            &ctx.echo,
            &session_id,
            Some(&ending),
            request.options.include_trace,
        );
        Ok(Completed {
            body: response.to_json(),
            outcome: ending.outcome,
        })
    }

    fn encoder(
        ctx: Ctx,
        meta: AnswerMeta,
        request: &AgentRequest,
        session_id: &str,
    ) -> stream::EventWriter {
        stream::EventWriter::new(ctx, meta, session_id, request.options.include_trace)
    }

    fn error_response(e: ProxyError) -> Response {
        e.into_response()
    }
}

/// `previous_response_id` -> the `session_id` parameter (a conflicting one is refused).
fn continue_session(obj: &mut Map<String, Value>) -> Result<()> {
    let Some(prev) = obj.get("previous_response_id").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let prev = prev.as_str().ok_or_else(|| {
        bad(
            "previous_response_id must be a string",
            Some("previous_response_id"),
        )
    })?;
    let r = id::ResponseRef::decode(prev, "previous_response_id")?;
    let pinned = AgentRequest {
        params: obj.clone(),
        ..Default::default()
    };
    match pinned.pinned_session() {
        Some(s) if s != r.session_id => Err(bad(
            format!(
                "session_id {s:?} differs from the session of previous_response_id ({:?})",
                r.session_id
            ),
            Some("previous_response_id"),
        )),
        Some(_) => Ok(()),
        None => {
            obj.insert("session_id".into(), Value::String(r.session_id));
            Ok(())
        }
    }
}

/// `instructions` and `input` as the canonical conversation.
fn messages(obj: &Map<String, Value>) -> Result<Vec<Message>> {
    let mut out = Vec::new();
    match obj.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => out.push(Message::new("system", s.clone())),
        Some(_) => {
            return Err(bad("instructions must be a string", Some("instructions")));
        }
    }
    match obj.get("input") {
        None | Some(Value::Null) => {
            return Err(bad("missing required field: input", Some("input")));
        }
        Some(Value::String(s)) => out.push(Message::new("user", s.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                item_into(&mut out, item, &format!("input[{i}]"))?;
            }
        }
        Some(_) => {
            return Err(bad(
                "input must be a string or a list of input items",
                Some("input"),
            ));
        }
    }
    Ok(out)
}

/// One input item, appended to the conversation.
fn item_into(out: &mut Vec<Message>, item: &Value, at: &str) -> Result<()> {
    let Value::Object(o) = item else {
        return Err(bad(format!("{at} must be an input item object"), Some(at)));
    };
    match o.get("type").and_then(Value::as_str) {
        None | Some("message") => {
            let role = common::str_field(o, "role", at)?;
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(bad(
                    format!("{at}.role {role:?} is not one of user, assistant, system, developer"),
                    Some(&format!("{at}.role")),
                ));
            }
            let content = o.get("content").unwrap_or(&Value::Null);
            let text = common::text(content, &format!("{at}.content"))?;
            out.push(Message::new(role, text));
        }
        Some("function_call") => {
            let call = common::tool_call(
                common::str_field(o, "call_id", at)?.to_string(),
                common::str_field(o, "name", at)?.to_string(),
                common::str_field(o, "arguments", at)?.to_string(),
            );
            common::push_tool_call(out, call);
        }
        Some("function_call_output") => {
            let call_id = common::str_field(o, "call_id", at)?.to_string();
            let output = o.get("output").unwrap_or(&Value::Null);
            let output = common::text(output, &format!("{at}.output"))?;
            out.push(common::tool_result(call_id, output));
        }
        // Reasoning summaries of earlier turns: agents have none to continue.
        Some("reasoning") => {}
        Some(other) => {
            return Err(bad(
                format!(
                    "{at}.type {other:?} is not supported: expected message, function_call or function_call_output"
                ),
                Some(&format!("{at}.type")),
            ));
        }
    }
    Ok(())
}

/// `GET /v1/responses/{id}`: responses are not stored (conversations continue through the
/// session their id carries), so this is a 404 that says so.
pub async fn retrieve(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    ProxyError::NotFound(format!(
        "response {id:?}: responses are not stored by this gateway; continue a conversation by sending this id as previous_response_id"
    ))
    .into_response()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
