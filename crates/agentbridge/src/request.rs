//! OpenAI chat request -> InvokeAgent request. A pure function over data.
//!
//! - `inputText` is the last user message (string or text parts joined with newlines).
//! - Earlier user/assistant turns go to `sessionState.conversationHistory`.
//! - `system`/`developer` messages are joined with blank lines into
//!   `sessionState.promptSessionAttributes.system` (the agent's prompt template reads it as
//!   `$prompt_session_attributes$`).
//! - Trailing `tool` messages answer a return of control: they become
//!   `sessionState.returnControlInvocationResults` plus `sessionState.invocationId`, on the
//!   session carried by their `tool_call_id`.
//! - Every other non-OpenAI parameter passes through to the body; deployment-level extras
//!   (config `litellm_params`) come first and the request's own override them.

use crate::canonical::AgentRequest;
use crate::error::{Error, Result};
use crate::model::{AgentModel, is_session_id};
use crate::openai::Message;
use crate::params::{GATEWAY_PARAMS, is_agent_param};
use crate::return_control::ToolCallRef;
use serde_json::{Map, Value, json};

/// The API model's limit on `inputText`.
pub const MAX_INPUT_TEXT: usize = 25_000_000;

/// Everything needed to send one InvokeAgent call.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeAgentRequest {
    /// The agent and alias.
    pub agent: AgentModel,
    /// The session (URI member).
    pub session_id: String,
    /// The JSON body.
    pub body: Map<String, Value>,
    /// `x-amz-source-arn`, from a `sourceArn` parameter.
    pub source_arn: Option<String>,
}

pub use crate::canonical::AnswerOptions;

/// Builds the InvokeAgent request for `req` addressed to `agent`. `deployment_extras` are the
/// deployment's fixed agent parameters (e.g. `invocationId` in the config).
pub fn to_invoke_agent(
    agent: &AgentModel,
    req: &AgentRequest,
    deployment_extras: &Map<String, Value>,
) -> Result<InvokeAgentRequest> {
    if req.messages.is_empty() {
        return Err(Error::invalid(
            "messages",
            "messages must contain at least one message",
        ));
    }
    for (i, m) in req.messages.iter().enumerate() {
        if !matches!(
            m.role.as_str(),
            "system" | "developer" | "user" | "assistant" | "tool"
        ) {
            return Err(Error::invalid(
                format!("messages[{i}].role"),
                format!(
                    "unknown role {:?}: expected system, developer, user, assistant or tool",
                    m.role
                ),
            ));
        }
    }
    let options = req.options;

    let mut body = Map::new();
    for (k, v) in deployment_extras.iter().chain(req.params.iter()) {
        if is_agent_param(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    let source_arn = match body.remove("sourceArn") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(Error::invalid("sourceArn", "sourceArn must be a string")),
    };
    body.insert("enableTrace".into(), json!(true));

    let mut state = match body.remove("sessionState") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(Error::invalid(
                "sessionState",
                "sessionState must be an object",
            ));
        }
    };

    let pinned = pinned_session(req)?;
    let tail_tools = req
        .messages
        .iter()
        .rev()
        .take_while(|m| m.role == "tool")
        .count();
    let session_id = if tail_tools > 0 {
        let start = req.messages.len() - tail_tools;
        let (session, invocation, results) = tool_results(&req.messages[start..], start)?;
        if let Some(p) = &pinned
            && *p != session
        {
            return Err(Error::invalid(
                "session_id",
                format!("session_id {p:?} differs from the session {session:?} of the tool calls"),
            ));
        }
        state.insert("invocationId".into(), json!(invocation));
        state.insert(
            "returnControlInvocationResults".into(),
            Value::Array(results),
        );
        session
    } else {
        let Some(last_user) = req.messages.iter().rposition(|m| m.role == "user") else {
            return Err(Error::invalid(
                "messages",
                "messages must contain a user message",
            ));
        };
        if last_user != req.messages.len() - 1
            && req.messages[last_user + 1..]
                .iter()
                .any(|m| m.role != "system" && m.role != "developer")
        {
            return Err(Error::invalid(
                "messages",
                "the last message must be from the user (or tool results answering tool calls)",
            ));
        }
        let input = req.messages[last_user].text();
        if input.len() > MAX_INPUT_TEXT {
            return Err(Error::invalid(
                format!("messages[{last_user}].content"),
                format!(
                    "the input is {} bytes; InvokeAgent accepts at most {MAX_INPUT_TEXT}",
                    input.len()
                ),
            ));
        }
        body.insert("inputText".into(), json!(input));
        let history = history(&req.messages[..last_user]);
        if !history.is_empty() && !state.contains_key("conversationHistory") {
            state.insert("conversationHistory".into(), json!({ "messages": history }));
        }
        pinned.unwrap_or_else(new_session_id)
    };

    let system = req
        .messages
        .iter()
        .filter(|m| m.role == "system" || m.role == "developer")
        .map(Message::text)
        .collect::<Vec<_>>()
        .join("\n\n");
    if !system.is_empty() {
        let attrs = state
            .entry("promptSessionAttributes")
            .or_insert_with(|| json!({}));
        match attrs {
            Value::Object(m) => {
                m.entry("system").or_insert(json!(system));
            }
            _ => {
                return Err(Error::invalid(
                    "sessionState.promptSessionAttributes",
                    "promptSessionAttributes must be an object of strings",
                ));
            }
        }
    }
    if !state.is_empty() {
        body.insert("sessionState".into(), Value::Object(state));
    }

    if options.stream {
        let sc = body
            .entry("streamingConfigurations")
            .or_insert_with(|| json!({}));
        match sc {
            Value::Object(m) => {
                m.insert("streamFinalResponse".into(), json!(true));
            }
            _ => {
                return Err(Error::invalid(
                    "streamingConfigurations",
                    "streamingConfigurations must be an object",
                ));
            }
        }
    }

    Ok(InvokeAgentRequest {
        agent: agent.clone(),
        session_id,
        body,
        source_arn,
    })
}

/// A fresh session id (a UUID, which matches the API model's session id pattern).
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn pinned_session(req: &AgentRequest) -> Result<Option<String>> {
    for key in GATEWAY_PARAMS
        .iter()
        .filter(|k| k.starts_with("session") || k.starts_with("runtimeSession"))
    {
        match req.params.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if is_session_id(s) => return Ok(Some(s.clone())),
            Some(_) => {
                return Err(Error::invalid(
                    *key,
                    format!("{key} must be 2-100 characters of letters, digits and ._:-"),
                ));
            }
        }
    }
    Ok(None)
}

fn tool_results(tools: &[Message], offset: usize) -> Result<(String, String, Vec<Value>)> {
    let mut session: Option<(String, String)> = None;
    let mut results = Vec::with_capacity(tools.len());
    for (i, m) in tools.iter().enumerate() {
        let field = format!("messages[{}].tool_call_id", offset + i);
        let id = m
            .tool_call_id
            .as_deref()
            .ok_or_else(|| Error::invalid(&field, "a tool message needs its tool_call_id"))?;
        let r = ToolCallRef::decode(id).map_err(|e| match e {
            Error::InvalidRequest { message, .. } => Error::invalid(&field, message),
            other => other,
        })?;
        match &session {
            None => session = Some((r.session_id.clone(), r.invocation_id.clone())),
            Some((s, inv)) if *s == r.session_id && *inv == r.invocation_id => {}
            Some(_) => {
                return Err(Error::invalid(
                    field,
                    "tool results in one request must answer the same return of control",
                ));
            }
        }
        results.push(r.result(&m.text()));
    }
    let (s, inv) = session.ok_or_else(|| Error::invalid("messages", "no tool results"))?;
    Ok((s, inv, results))
}

/// Earlier user/assistant turns with text, as `conversationHistory.messages`.
fn history(earlier: &[Message]) -> Vec<Value> {
    earlier
        .iter()
        .filter(|m| m.role == "user" || m.role == "assistant")
        .map(|m| (m.role.as_str(), m.text()))
        .filter(|(_, text)| !text.is_empty())
        .map(|(role, text)| json!({"role": role, "content": [{"text": text}]}))
        .collect()
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
