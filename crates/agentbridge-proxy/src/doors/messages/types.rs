//! The Messages API's output objects and errors: the `message` (content blocks, stop reason,
//! usage), citations as `web_search_result_location`s, and errors as
//! `{"type": "error", "error": {"type", "message"}}` with Anthropic's status codes.

use crate::error::ProxyError;
use agentbridge::canonical::{Ending, Finish};
use agentbridge::openai::{Annotation, OutputFile, ToolCall};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

/// A content block of the answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Answer text, with its citations (`null` when none).
    Text {
        /// The text.
        text: String,
        /// Knowledge-base citations.
        citations: Option<Vec<Citation>>,
    },
    /// A return of control: a tool for the client to run.
    ToolUse {
        /// The id the client's `tool_result` answers (it carries the agent session).
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments.
        input: Value,
    },
}

impl Block {
    /// A `tool_use` block for a tool call (arguments that are not JSON become `{}`).
    pub fn tool_use(call: ToolCall) -> Self {
        let input = serde_json::from_str(&call.function.arguments).unwrap_or_else(|_| json!({}));
        Self::ToolUse {
            id: call.id,
            name: call.function.name,
            input,
        }
    }
}

/// A citation of a retrieved reference (Anthropic's `web_search_result_location`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Citation {
    /// Always `web_search_result_location`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The reference's location (`s3://...`, a web URL, ...).
    pub url: String,
    /// Its title.
    pub title: String,
    /// The cited span of the answer (empty in streams, which do not keep the answer).
    pub cited_text: String,
    /// Always empty (no search index to point back to).
    pub encrypted_index: &'static str,
}

impl Citation {
    /// The citation for `a`, citing `cited_text`.
    pub fn new(a: Annotation, cited_text: String) -> Self {
        Self {
            kind: "web_search_result_location",
            url: a.url_citation.url,
            title: a.url_citation.title,
            cited_text,
            encrypted_index: "",
        }
    }
}

/// The Messages API's `usage`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct Usage {
    /// Input tokens over every model call of the agent.
    pub input_tokens: u64,
    /// Output tokens likewise.
    pub output_tokens: u64,
}

impl Usage {
    /// The usage of an answer (zeros when the agent reported none; see [`Message`]).
    pub fn of(e: &Ending) -> Self {
        Self {
            input_tokens: e.outcome.usage.prompt_tokens,
            output_tokens: e.outcome.usage.completion_tokens,
        }
    }
}

/// `stop_reason` for why an answer ended.
pub fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

/// The `message` object.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// `msg_...`.
    pub id: &'a str,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `assistant`.
    pub role: &'static str,
    /// The model name the client used.
    pub model: &'a str,
    /// The content blocks.
    pub content: &'a [Block],
    /// `end_turn`, `tool_use` or `refusal`; `null` in `message_start`.
    pub stop_reason: Option<&'static str>,
    /// Always `null`.
    pub stop_sequence: Option<&'static str>,
    /// Tokens. The format requires usage: when the agent reported none, the counts are 0
    /// and `usage_reported` is `false`.
    pub usage: Usage,
    /// `false` when the agent reported no usage, absent otherwise (an agentbridge extra).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_reported: Option<bool>,
    /// The agent session (an agentbridge extra).
    pub session_id: &'a str,
    /// The agent's trace steps, when asked for (`include_trace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<&'a [Value]>,
    /// Files the agent produced.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub files: &'a [OutputFile],
}

/// Anthropic's status and error type for a gateway error.
pub fn error_kind(e: &ProxyError) -> (StatusCode, &'static str) {
    match e {
        ProxyError::RateLimited { retry: false, .. } => for_status(402),
        ProxyError::Overloaded(_) => for_status(529),
        _ => for_status(e.status().as_u16()),
    }
}

/// Anthropic's status and error type for the gateway's status `s`.
pub fn for_status(s: u16) -> (StatusCode, &'static str) {
    let (s, kind) = match s {
        400 => (400, "invalid_request_error"),
        401 => (401, "authentication_error"),
        402 => (402, "billing_error"),
        403 => (403, "permission_error"),
        404 => (404, "not_found_error"),
        409 => (409, "conflict_error"),
        413 => (413, "request_too_large"),
        429 => (429, "rate_limit_error"),
        503 | 529 => (529, "overloaded_error"),
        504 => (504, "timeout_error"),
        _ => (500, "api_error"),
    };
    (
        StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        kind,
    )
}

/// The error body.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
