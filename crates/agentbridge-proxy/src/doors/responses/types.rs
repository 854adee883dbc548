//! The Responses API's output objects, and the [`Builder`] that turns an answer's pieces into
//! them, piece by piece: the non-streamed fold and the stream's events both drive it, so the
//! two cannot drift. (The format repeats the whole answer in its closing events, so the
//! stream keeps the text of the answer, unlike Chat Completions and Messages.)

use super::id::ResponseRef;
use crate::doors::AnswerMeta;
use agentbridge::canonical::{Ending, Finish};
use agentbridge::openai::{Annotation, OutputFile, ToolCall};
use serde::Serialize;
use serde_json::{Map, Value};

/// An output item: the assistant's message, or a call of a client-side function.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// Answer text.
    Message {
        /// `msg_...`.
        id: String,
        /// `in_progress` while streaming, then `completed`.
        status: &'static str,
        /// Always `assistant`.
        role: &'static str,
        /// One `output_text` part.
        content: Vec<OutputText>,
    },
    /// The agent handed control back: a function for the client to run.
    FunctionCall {
        /// `fc_...`.
        id: String,
        /// The id the client answers with (`function_call_output.call_id`); it carries the
        /// agent session.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The arguments, a JSON object as a string.
        arguments: String,
        /// `completed`.
        status: &'static str,
    },
}

/// An `output_text` content part.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutputText {
    /// Always `output_text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The text.
    pub text: String,
    /// Citations of the text.
    pub annotations: Vec<UrlCitation>,
    /// Always empty (agents report none).
    pub logprobs: [(); 0],
}

impl Default for OutputText {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputText {
    /// An empty part.
    pub fn new() -> Self {
        Self {
            kind: "output_text",
            text: String::new(),
            annotations: Vec::new(),
            logprobs: [],
        }
    }
}

/// A `url_citation` annotation (the Responses API's flat form).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UrlCitation {
    /// Always `url_citation`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The cited location.
    pub url: String,
    /// Its title.
    pub title: String,
    /// First character of the supported span.
    pub start_index: usize,
    /// One past its last character.
    pub end_index: usize,
}

impl From<Annotation> for UrlCitation {
    fn from(a: Annotation) -> Self {
        Self {
            kind: "url_citation",
            url: a.url_citation.url,
            title: a.url_citation.title,
            start_index: a.url_citation.start_index,
            end_index: a.url_citation.end_index,
        }
    }
}

/// The Responses API's `usage`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Usage {
    /// Input tokens over every model call of the agent.
    pub input_tokens: u64,
    /// `{"cached_tokens": 0}`.
    pub input_tokens_details: CachedTokens,
    /// Output tokens likewise.
    pub output_tokens: u64,
    /// `{"reasoning_tokens": 0}`.
    pub output_tokens_details: ReasoningTokens,
    /// Their sum.
    pub total_tokens: u64,
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CachedTokens {
    /// Not reported by agents: 0.
    pub cached_tokens: u64,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ReasoningTokens {
    /// Not reported by agents: 0.
    pub reasoning_tokens: u64,
}

/// The request fields a response object repeats, and their defaults (as JSON) when the
/// request left them out or null.
const ECHOED: [(&str, &str); 13] = [
    ("instructions", "null"),
    ("max_output_tokens", "null"),
    ("metadata", "{}"),
    ("parallel_tool_calls", "true"),
    ("previous_response_id", "null"),
    ("store", "true"),
    ("temperature", "null"),
    ("text", r#"{"format":{"type":"text"}}"#),
    ("tool_choice", r#""auto""#),
    ("tools", "[]"),
    ("top_p", "null"),
    ("truncation", r#""disabled""#),
    ("user", "null"),
];

/// The request fields every response object of a request repeats (`ECHOED`), written once
/// per request as JSON object members (`"instructions":null,...`): a stream repeats them in
/// three events, and copying them is cheaper than writing them each time.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    members: Vec<u8>,
}

impl Echo {
    /// The echoed fields of `request` (the request's JSON object).
    pub fn new(request: &Map<String, Value>) -> Self {
        let mut members = Vec::with_capacity(320);
        for (i, (key, default)) in ECHOED.iter().enumerate() {
            if i > 0 {
                members.push(b',');
            }
            // The keys are plain ASCII: nothing to escape.
            members.push(b'"');
            members.extend_from_slice(key.as_bytes());
            members.extend_from_slice(b"\":");
            let start = members.len();
            let given = request.get(*key).filter(|v| !v.is_null());
            if given.is_none_or(|v| serde_json::to_writer(&mut members, v).is_err()) {
                members.truncate(start);
                members.extend_from_slice(default.as_bytes());
            }
        }
        Self { members }
    }

    /// The fields as a JSON object (for tests).
    #[cfg(test)]
    pub fn to_map(&self) -> Map<String, Value> {
        let mut object = Vec::with_capacity(self.members.len() + 2);
        object.push(b'{');
        object.extend_from_slice(&self.members);
        object.push(b'}');
        serde_json::from_slice(&object).unwrap_or_default()
    }
}

/// The `response` object.
#[derive(Debug, Serialize)]
pub struct ResponseObject<'a> {
    /// The id (it carries the session: see [`ResponseRef`]).
    pub id: &'a str,
    /// Always `response`.
    pub object: &'static str,
    /// Unix seconds.
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: &'static str,
    /// On `failed`: `{code, message}`.
    pub error: Option<Value>,
    /// On `incomplete`: `{"reason": "content_filter"}` (a guardrail intervened).
    pub incomplete_details: Option<Value>,
    /// The model name the client used.
    pub model: &'a str,
    /// The output items.
    pub output: &'a [OutputItem],
    /// Absent (`null`) when the agent reported no usage: no invented counts.
    pub usage: Option<Usage>,
    /// The agent session (an agentbridge extra).
    pub session_id: &'a str,
    /// The agent's trace steps, when asked for (`include_trace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<&'a [Value]>,
    /// Files the agent produced.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub files: &'a [OutputFile],
    /// The request's echoed fields, written after the others by [`ResponseObject::to_json`].
    #[serde(skip)]
    pub echo: &'a Echo,
}

impl ResponseObject<'_> {
    /// The object as JSON: its own fields, then the echoed ones. (The derived `Serialize`
    /// writes only the former: always write a response with this.)
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        if serde_json::to_writer(&mut out, self).is_err() {
            out.clear();
            out.extend_from_slice(b"{}");
            return out;
        }
        if !self.echo.members.is_empty() {
            // The object ends in `}` and has members: insert `,` + the echoed ones.
            out.pop();
            out.push(b',');
            out.extend_from_slice(&self.echo.members);
            out.push(b'}');
        }
        out
    }
}

/// Builds the output of one answer, piece by piece.
#[derive(Debug)]
pub struct Builder {
    /// The response id.
    pub id: String,
    item_ids: String,
    /// The items so far.
    pub output: Vec<OutputItem>,
    open: Option<usize>,
    /// The open message's text part.
    part: OutputText,
    /// Trace steps.
    pub traces: Vec<Value>,
    /// Output files.
    pub files: Vec<OutputFile>,
}

impl Builder {
    /// A builder for the answer of `meta`'s request, on `session_id`.
    pub fn new(meta: &AnswerMeta, session_id: &str) -> Self {
        let request_id = meta.request_id.replace('-', "");
        let id = ResponseRef {
            session_id: session_id.to_string(),
            deployment: meta.deployment.clone(),
            request_id: request_id.clone(),
        }
        .encode();
        Self {
            id,
            item_ids: request_id,
            output: Vec::new(),
            open: None,
            part: OutputText::new(),
            traces: Vec::new(),
            files: Vec::new(),
        }
    }

    /// The open message's index, opening one if none is (`true` when it did).
    pub fn message(&mut self) -> (usize, bool) {
        if let Some(i) = self.open {
            return (i, false);
        }
        let i = self.output.len();
        // A placeholder until the message closes with its text part.
        self.output.push(OutputItem::Message {
            id: format!("msg_{}_{i}", self.item_ids),
            status: "in_progress",
            role: "assistant",
            content: Vec::new(),
        });
        self.open = Some(i);
        (i, true)
    }

    /// Appends answer text to the open message.
    pub fn text(&mut self, t: &str) {
        self.message();
        self.part.text.push_str(t);
    }

    /// Adds citations to the open message; returns the index of the first.
    pub fn annotations(&mut self, a: Vec<Annotation>) -> usize {
        self.message();
        let first = self.part.annotations.len();
        self.part
            .annotations
            .extend(a.into_iter().map(UrlCitation::from));
        first
    }

    /// Completes the open message, if any, with its text part; returns its index.
    pub fn close(&mut self) -> Option<usize> {
        let i = self.open.take()?;
        let part = std::mem::take(&mut self.part);
        if let Some(OutputItem::Message {
            status, content, ..
        }) = self.output.get_mut(i)
        {
            *status = "completed";
            *content = vec![part];
        }
        Some(i)
    }

    /// The id of item `i`.
    pub fn item_id(&self, i: usize) -> &str {
        match self.output.get(i) {
            Some(OutputItem::Message { id, .. } | OutputItem::FunctionCall { id, .. }) => id,
            None => "",
        }
    }

    /// Adds a function call (closing the open message); returns its index.
    pub fn call(&mut self, call: ToolCall) -> usize {
        self.close();
        let i = self.output.len();
        self.output.push(OutputItem::FunctionCall {
            id: format!("fc_{}_{i}", self.item_ids),
            call_id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
            status: "completed",
        });
        i
    }

    /// The response: in progress (`None`), or as `ending` left it.
    pub fn response<'a>(
        &'a self,
        meta: &'a AnswerMeta,
        echo: &'a Echo,
        session_id: &'a str,
        ending: Option<&Ending>,
        include_trace: bool,
    ) -> ResponseObject<'a> {
        let (status, incomplete) = match ending.map(|e| e.finish) {
            None => ("in_progress", None),
            Some(Finish::ContentFilter) => (
                "incomplete",
                Some(serde_json::json!({"reason": "content_filter"})),
            ),
            Some(Finish::Stop | Finish::ToolCalls) => ("completed", None),
        };
        let usage = ending.filter(|e| e.usage_reported).map(|e| {
            let u = e.outcome.usage;
            Usage {
                input_tokens: u.prompt_tokens,
                input_tokens_details: CachedTokens { cached_tokens: 0 },
                output_tokens: u.completion_tokens,
                output_tokens_details: ReasoningTokens {
                    reasoning_tokens: 0,
                },
                total_tokens: u.total_tokens,
            }
        });
        ResponseObject {
            id: &self.id,
            object: "response",
            created_at: meta.created,
            status,
            error: None,
            incomplete_details: incomplete,
            model: &meta.model,
            output: if ending.is_some() { &self.output } else { &[] },
            usage,
            session_id,
            trace: (include_trace && ending.is_some()).then_some(self.traces.as_slice()),
            files: &self.files,
            echo,
        }
    }
}
