//! The OpenAI Chat Completions types the gateway reads and writes.
//!
//! Requests are read permissively (unknown fields are kept in [`ChatRequest::extra`], since
//! they are InvokeAgent parameters); responses are written with exactly OpenAI's field names,
//! plus a few documented agent extras (`session_id`, `trace`, `citations`, `files`) that
//! OpenAI clients ignore.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A chat completion request as clients send it.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ChatRequest {
    /// The model: a deployment name (proxy) or `bedrock/agent/ID/ALIAS` (SDK).
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Stream `chat.completion.chunk`s.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stream: bool,
    /// `{"include_usage": true}` adds a final usage chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Everything else: OpenAI sampling options (ignored by agents), gateway options
    /// (`session_id`, `include_trace`) and InvokeAgent parameters (`sessionState`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `stream_options`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` and empty `choices`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_usage: bool,
}

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Message {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text, or content parts; absent on assistant messages with only tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Tool calls made by the assistant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On `tool` messages: the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message with text content.
    pub fn new(role: &str, text: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Some(Content::Text(text.into())),
            tool_calls: None,
            tool_call_id: None,
            name: None,
        }
    }

    /// The message's text: the string, or its `text` parts joined with newlines.
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(s)) => s.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Message content: a string or a list of parts (`{"type": "text", "text": ...}`, ...).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts; only `text` parts reach an agent.
    Parts(Vec<Map<String, Value>>),
}

/// A tool call, in requests (assistant history) and responses.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ToolCall {
    /// Opaque id; agentbridge's ids carry the agent session and invocation.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function and its JSON arguments.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

/// A function name and its arguments as a JSON string.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FunctionCall {
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON object serialized as a string.
    pub arguments: String,
}

/// Token usage.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens, summed over every model invocation of the agent.
    pub prompt_tokens: u64,
    /// Output tokens, summed likewise.
    pub completion_tokens: u64,
    /// The sum of both.
    pub total_tokens: u64,
}

impl Usage {
    /// Adds one model invocation's usage.
    pub fn add(&mut self, input: u64, output: u64) {
        self.prompt_tokens += input;
        self.completion_tokens += output;
        self.total_tokens = self.prompt_tokens + self.completion_tokens;
    }
}

/// An OpenAI annotation: a citation of a URL for a span of the answer.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Annotation {
    /// Always `url_citation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The cited location and the span it supports.
    pub url_citation: UrlCitation,
}

/// The body of a `url_citation` annotation.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct UrlCitation {
    /// The reference's location (`s3://...`, a web URL, ...).
    pub url: String,
    /// A short title: the reference's file name or location type.
    pub title: String,
    /// First character of the supported span, in the whole answer.
    pub start_index: usize,
    /// One past the last character of the supported span.
    pub end_index: usize,
}

/// A file the agent produced (a `files` event), content base64-encoded.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct OutputFile {
    /// File name.
    pub name: String,
    /// Media type.
    #[serde(rename = "type")]
    pub media_type: String,
    /// Base64 content, as AWS sent it.
    pub bytes: String,
}

/// The assistant's message in a `chat.completion`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    /// The answer text (`null` when the agent only returned control).
    pub content: Option<String>,
    /// Return-of-control invocations as tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Knowledge-base citations as OpenAI annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// The raw `attribution.citations` of the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Value>,
    /// Files the agent produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<OutputFile>,
}

/// One choice of a `chat.completion`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Choice {
    /// Always 0: agents give one answer.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// `stop`, `tool_calls` or `content_filter`.
    pub finish_reason: String,
}

/// A `chat.completion` response.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: String,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Tokens summed over every model call the agent reported (absent when the agent
    /// reports none: no invented counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The agent session used; send it back as `session_id` to continue.
    pub session_id: String,
    /// The agent's trace steps, when the request asked for them (`include_trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Vec<Value>>,
    /// The cost in USD of this call (LiteLLM's `_hidden_params['response_cost']`). Not
    /// serialized: the proxy sends it as the `x-litellm-response-cost` header.
    #[serde(skip)]
    pub response_cost: f64,
}

/// The `delta` of a streamed choice.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct Delta {
    /// `assistant` on the first chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool calls, whole, each with its `index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    /// Annotations for text sent so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<Annotation>>,
    /// Raw citations that came with this piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<Value>>,
    /// Files the agent produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<OutputFile>>,
}

/// One choice of a chunk.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What is new.
    pub delta: Delta,
    /// Set on the last chunk of the answer.
    pub finish_reason: Option<String>,
}

/// A `chat.completion.chunk`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ChatChunk {
    /// The same id on every chunk of a stream.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: String,
    /// One choice, or none on usage and trace chunks.
    pub choices: Vec<ChunkChoice>,
    /// On the usage chunk only (with `stream_options.include_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The agent session, on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// One agent trace step, on trace chunks (with `include_trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Value>,
}
