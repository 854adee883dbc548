//! The canonical request and answer: the middle where doors and targets meet.
//!
//! A **door** (Chat Completions, Responses, Messages) parses its wire format into an
//! [`AgentRequest`] and renders an [`Answer`]'s [`Piece`]s in its format. A **target**
//! (Bedrock Agents, AgentCore Runtime; see [`crate::target`]) turns an [`AgentRequest`] into
//! its signed call and its response into an [`Answer`]. Neither knows the other: everything
//! that crosses the seam is defined here.
//!
//! ```
//! use agentbridge::canonical::{AgentRequest, Finish, Piece};
//! use agentbridge::Message;
//! let req = AgentRequest::new(vec![Message::new("user", "hi")]);
//! assert!(!req.options.stream);
//! assert_eq!(Finish::ToolCalls, Finish::ToolCalls);
//! let _text = Piece::Text("hello".into());
//! ```

use crate::error::Result;
use crate::openai::{Annotation, Message, OutputFile, ToolCall, Usage};
use crate::params::GATEWAY_PARAMS;
use futures::Stream;
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::pin::Pin;

/// How the caller wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnswerOptions {
    /// The door will stream the answer (targets may ask the agent to stream).
    pub stream: bool,
    /// Chat Completions only: add a usage chunk at the end of a stream.
    pub include_usage: bool,
    /// Return the agent's trace steps as [`Piece::Trace`].
    pub include_trace: bool,
}

/// Per-call context from the client's HTTP request that a target may forward.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// W3C `traceparent`.
    pub traceparent: Option<String>,
    /// W3C `tracestate`.
    pub tracestate: Option<String>,
    /// W3C `baggage`.
    pub baggage: Option<String>,
    /// The end user's own OAuth token, from the request header the deployment names (never
    /// from the JSON body; never logged).
    pub user_token: Option<SecretString>,
    /// The client's headers the model passes on to its agent (LiteLLM's
    /// `forward_client_headers_to_llm_api`): its `x-` headers but credentials, names AWS
    /// reserves and the gateway's own. Empty unless the config asks for it.
    pub forwarded: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// The canonical request: one conversation turn for an agent.
#[derive(Debug, Clone, Default)]
pub struct AgentRequest {
    /// The conversation, oldest first: `system`/`developer`, `user`, `assistant` (with
    /// `tool_calls`) and `tool` messages. The last user message (or the trailing tool
    /// results) is this turn's input.
    pub messages: Vec<Message>,
    /// Every non-door field: the gateway's options (`session_id`, `include_trace`, ...) and
    /// parameters for the agent (`sessionState`, `invocationId`, ...). No deployment settings.
    pub params: Map<String, Value>,
    /// How the answer is wanted.
    pub options: AnswerOptions,
    /// Headers a target may forward.
    pub context: CallContext,
}

impl AgentRequest {
    /// A request for `messages` with no parameters.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Default::default()
        }
    }

    /// The session the caller pinned (`session_id`, `sessionID`, `sessionId`,
    /// `runtimeSessionId`), as given. Targets check its form.
    pub fn pinned_session(&self) -> Option<&str> {
        GATEWAY_PARAMS
            .iter()
            .filter(|k| k.starts_with("session") || k.starts_with("runtimeSession"))
            .find_map(|k| self.params.get(*k).and_then(Value::as_str))
    }

    /// Reads `include_trace` from the parameters (every door accepts it).
    pub fn read_include_trace(params: &Map<String, Value>) -> Result<bool> {
        match params.get("include_trace") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(crate::Error::invalid(
                "include_trace",
                "include_trace must be a boolean",
            )),
        }
    }
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Finish {
    /// The agent answered.
    #[default]
    Stop,
    /// The agent handed control back: the answer holds tool calls.
    ToolCalls,
    /// A guardrail intervened.
    ContentFilter,
}

impl Finish {
    /// Chat Completions' `finish_reason`.
    pub fn as_openai(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// Cost and usage at the end of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    /// Tokens summed over every model call the agent reported.
    pub usage: Usage,
    /// USD.
    pub cost: f64,
}

/// The last piece of every answer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ending {
    /// Why it ended.
    pub finish: Finish,
    /// Usage and cost.
    pub outcome: Outcome,
    /// Whether the agent reported its usage. When it did not, `outcome.usage` is zero and
    /// doors leave usage out rather than invent token counts.
    pub usage_reported: bool,
}

/// What the agent's answer adds, in order. Every answer stream ends with exactly one
/// [`Piece::End`] (or an error).
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Answer text (whole UTF-8 characters only).
    Text(String),
    /// Citations for the answer: OpenAI annotations and the raw citations.
    Citations {
        /// As OpenAI `url_citation` annotations.
        annotations: Vec<Annotation>,
        /// As the agent sent them.
        raw: Vec<Value>,
    },
    /// The agent handed control back: calls for the client to run.
    ToolCalls(Vec<ToolCall>),
    /// Output files.
    Files(Vec<OutputFile>),
    /// A trace step (only when the caller asked for traces).
    Trace(Value),
    /// The end of the answer.
    End(Ending),
}

/// The answer's pieces as they arrive.
pub type PieceStream = Pin<Box<dyn Stream<Item = Result<Piece>> + Send>>;

/// An agent's answer: the session it ran in and its pieces.
pub struct Answer {
    /// The agent session (to continue the conversation).
    pub session_id: String,
    /// The pieces, ending with [`Piece::End`].
    pub pieces: PieceStream,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}
