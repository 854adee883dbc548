//! Return of control <-> OpenAI tool calls.
//!
//! A `returnControl` event becomes one tool call per invocation input. The tool's name is
//! `{actionGroup}__{function}` for function action groups and
//! `{actionGroup}__{httpMethod}__{apiPath}` (non-alphanumerics as `_`) for API schemas. The
//! arguments are a JSON object of the parameters (typed by their declared `type`); API request
//! bodies add a `requestBody` object. The `tool_call_id` carries, base64url-encoded, all that
//! is needed to send the result back on the same agent session (session id, invocation id,
//! action group, function or API path and method), so any gateway instance can take the
//! follow-up: the gateway keeps no state.

use crate::error::{Error, Result};
use crate::openai::{FunctionCall, ToolCall};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const ID_PREFIX: &str = "call_ab1_";

/// What a tool call id carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRef {
    /// The agent session that returned control.
    #[serde(rename = "s")]
    pub session_id: String,
    /// The `invocationId` of the `returnControl` event.
    #[serde(rename = "i")]
    pub invocation_id: String,
    /// The action group.
    #[serde(rename = "g")]
    pub action_group: String,
    /// The function, for function action groups.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The API path, for API-schema action groups.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub api_path: Option<String>,
    /// The HTTP method, for API-schema action groups.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// The (collaborator) agent id, when the event named one.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl ToolCallRef {
    /// Encodes into a `tool_call_id`.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Decodes a `tool_call_id` made by [`ToolCallRef::encode`].
    pub fn decode(id: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "messages[].tool_call_id",
                format!(
                    "tool_call_id {id:?} was not issued by agentbridge for a return of control"
                ),
            )
        };
        let b64 = id.strip_prefix(ID_PREFIX).ok_or_else(bad)?;
        let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }

    /// The InvokeAgent `returnControlInvocationResults` member for the tool's output.
    pub fn result(&self, output: &str) -> Value {
        let mut r = Map::new();
        r.insert("actionGroup".into(), json!(self.action_group));
        if let Some(a) = &self.agent_id {
            r.insert("agentId".into(), json!(a));
        }
        match &self.function {
            Some(f) => {
                r.insert("function".into(), json!(f));
                r.insert("responseBody".into(), json!({"TEXT": {"body": output}}));
                json!({ "functionResult": r })
            }
            None => {
                r.insert(
                    "apiPath".into(),
                    json!(self.api_path.clone().unwrap_or_default()),
                );
                r.insert(
                    "httpMethod".into(),
                    json!(self.http_method.clone().unwrap_or_default()),
                );
                r.insert("httpStatusCode".into(), json!(200));
                r.insert(
                    "responseBody".into(),
                    json!({"application/json": {"body": output}}),
                );
                json!({ "apiResult": r })
            }
        }
    }
}

/// Turns a `returnControl` payload into tool calls.
pub fn tool_calls(session_id: &str, payload: &Value) -> Result<Vec<ToolCall>> {
    let invocation_id = payload
        .get("invocationId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let inputs = payload
        .get("invocationInputs")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Decode("returnControl event without invocationInputs".into()))?;
    inputs
        .iter()
        .map(|input| {
            let (reference, args) = if let Some(f) = input.get("functionInvocationInput") {
                let r = ToolCallRef {
                    session_id: session_id.into(),
                    invocation_id: invocation_id.into(),
                    action_group: str_field(f, "actionGroup"),
                    function: Some(str_field(f, "function")),
                    api_path: None,
                    http_method: None,
                    agent_id: f.get("agentId").and_then(Value::as_str).map(Into::into),
                };
                (r, typed_params(f.get("parameters")))
            } else if let Some(a) = input.get("apiInvocationInput") {
                let r = ToolCallRef {
                    session_id: session_id.into(),
                    invocation_id: invocation_id.into(),
                    action_group: str_field(a, "actionGroup"),
                    function: None,
                    api_path: Some(str_field(a, "apiPath")),
                    http_method: Some(str_field(a, "httpMethod")),
                    agent_id: a.get("agentId").and_then(Value::as_str).map(Into::into),
                };
                let mut args = typed_params(a.get("parameters"));
                if let Some(content) = a.pointer("/requestBody/content").and_then(Value::as_object)
                {
                    let mut body = Map::new();
                    for media in content.values() {
                        if let Value::Object(props) = typed_params(media.get("properties")) {
                            body.extend(props);
                        }
                    }
                    if let Value::Object(m) = &mut args {
                        m.insert("requestBody".into(), Value::Object(body));
                    }
                }
                (r, args)
            } else {
                return Err(Error::Decode(
                    "returnControl invocation input of unknown kind".into(),
                ));
            };
            Ok(ToolCall {
                id: reference.encode(),
                kind: "function".into(),
                function: FunctionCall {
                    name: tool_name(&reference),
                    arguments: args.to_string(),
                },
            })
        })
        .collect()
}

/// The documented tool name for an invocation.
pub fn tool_name(r: &ToolCallRef) -> String {
    let raw = match (&r.function, &r.api_path) {
        (Some(f), _) => format!("{}__{}", r.action_group, f),
        (None, path) => format!(
            "{}__{}__{}",
            r.action_group,
            r.http_method.as_deref().unwrap_or(""),
            path.as_deref().unwrap_or("").trim_start_matches('/')
        ),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn str_field(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `[{name, type, value}]` -> `{name: value}`, with numbers, integers and booleans typed.
fn typed_params(params: Option<&Value>) -> Value {
    let mut out = Map::new();
    for p in params.and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        let raw = p.get("value").and_then(Value::as_str).unwrap_or_default();
        let ty = p.get("type").and_then(Value::as_str).unwrap_or("string");
        let value = match ty {
            "integer" | "number" => raw.parse::<serde_json::Number>().map(Value::Number).ok(),
            "boolean" => raw.parse::<bool>().map(Value::Bool).ok(),
            "array" | "object" => serde_json::from_str(raw).ok(),
            _ => None,
        };
        out.insert(
            name.into(),
            value.unwrap_or_else(|| Value::String(raw.into())),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Value {
        json!({
            "invocationId": "inv-1",
            "invocationInputs": [
                {"functionInvocationInput": {"actionGroup": "weather", "function": "get_forecast",
                    "parameters": [{"name": "city", "type": "string", "value": "Paris"},
                                   {"name": "days", "type": "integer", "value": "3"}]}},
                {"apiInvocationInput": {"actionGroup": "orders", "apiPath": "/orders/{id}", "httpMethod": "POST",
                    "parameters": [{"name": "id", "type": "string", "value": "42"}],
                    "requestBody": {"content": {"application/json": {"properties": [
                        {"name": "rush", "type": "boolean", "value": "true"}]}}}}}
            ]
        })
    }

    #[test]
    fn function_and_api_inputs_become_named_tool_calls() {
        let calls = tool_calls("sess-1", &payload()).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].function.name, "weather__get_forecast");
        let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
        assert_eq!(args, json!({"city": "Paris", "days": 3}));
        assert_eq!(calls[1].function.name, "orders__POST__orders__id_");
        let args: Value = serde_json::from_str(&calls[1].function.arguments).unwrap();
        assert_eq!(args, json!({"id": "42", "requestBody": {"rush": true}}));
    }

    #[test]
    fn tool_call_id_round_trips_session_and_invocation() {
        let calls = tool_calls("sess-1", &payload()).unwrap();
        let r = ToolCallRef::decode(&calls[0].id).unwrap();
        assert_eq!(
            (r.session_id.as_str(), r.invocation_id.as_str()),
            ("sess-1", "inv-1")
        );
        assert_eq!(
            r.result("sunny"),
            json!({"functionResult": {"actionGroup": "weather", "function": "get_forecast",
                   "responseBody": {"TEXT": {"body": "sunny"}}}})
        );
        let api = ToolCallRef::decode(&calls[1].id).unwrap();
        assert_eq!(api.result("{}")["apiResult"]["httpMethod"], "POST");
        assert_eq!(api.result("{}")["apiResult"]["apiPath"], "/orders/{id}");
    }

    #[test]
    fn foreign_tool_call_ids_are_a_clear_400() {
        for id in ["call_abc", "call_ab1_!!!", "call_ab1_e30"] {
            let e = ToolCallRef::decode(id).unwrap_err();
            assert_eq!(e.status_code(), 400, "{id}");
        }
    }
}
