//! What the Responses and Messages doors share: reading a request body as a JSON object,
//! keeping the door's own fields apart from the parameters that go on to the gateway and the
//! agent, text content in its several spellings, and tool calls from history.

use crate::error::{ProxyError, Result};
use agentbridge::canonical::{AgentRequest, AnswerOptions};
use agentbridge::openai::{FunctionCall, ToolCall};
use serde_json::{Map, Value};

/// A 400 naming the field at fault.
pub fn bad(message: impl Into<String>, param: Option<&str>) -> ProxyError {
    ProxyError::BadRequest {
        message: message.into(),
        param: param.map(str::to_string),
    }
}

/// The body as a JSON object, with its `model` taken out (required, a non-empty string) and
/// deployment settings refused.
pub fn json_object(bytes: &[u8]) -> Result<(String, Map<String, Value>)> {
    let value: Value = agentbridge::json::from_bytes(bytes)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}"), None))?;
    let Value::Object(mut obj) = value else {
        return Err(bad("request body must be a JSON object", None));
    };
    crate::routes::refuse_deployment_params(&obj)?;
    let model = match obj.remove("model") {
        Some(Value::String(s)) if !s.is_empty() => s,
        None | Some(Value::Null) => {
            return Err(bad("missing required field: model", Some("model")));
        }
        Some(_) => return Err(bad("model must be a non-empty string", Some("model"))),
    };
    Ok((model, obj))
}

/// A boolean field (absent or `null`: false).
pub fn flag(obj: &Map<String, Value>, key: &str) -> Result<bool> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("{key} must be a boolean"), Some(key))),
    }
}

/// The canonical request: the door's fields named in `door_fields` are dropped from `obj`
/// (accepted, not sent), the rest are parameters (`session_id`, `include_trace`, agent
/// parameters), as in the Chat door.
pub fn request(
    messages: Vec<agentbridge::Message>,
    mut obj: Map<String, Value>,
    door_fields: &[&str],
    stream: bool,
) -> Result<AgentRequest> {
    obj.retain(|k, _| !door_fields.contains(&k.as_str()));
    let options = AnswerOptions {
        stream,
        include_usage: false,
        include_trace: AgentRequest::read_include_trace(&obj)?,
    };
    Ok(AgentRequest {
        messages,
        params: obj,
        options,
        context: Default::default(),
    })
}

/// Text content: a string, or a list of parts whose `text` is joined with newlines (parts
/// without text, such as images, do not reach an agent). `param` names the field.
pub fn text(value: &Value, param: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                let t = match p {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o) => o.get("text").and_then(Value::as_str),
                    _ => {
                        return Err(bad(
                            format!("{param}[{i}] must be a content part object"),
                            Some(&format!("{param}[{i}]")),
                        ));
                    }
                };
                if let Some(t) = t {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                }
            }
            Ok(out)
        }
        _ => Err(bad(
            format!("{param} must be a string or a list of content parts"),
            Some(param),
        )),
    }
}

/// A tool call of the conversation's history, as the canonical assistant message holds it.
pub fn tool_call(id: String, name: String, arguments: String) -> ToolCall {
    ToolCall {
        id,
        kind: "function".into(),
        function: FunctionCall { name, arguments },
    }
}

/// Appends a tool call to the history: to the last message when it is an assistant's,
/// otherwise as a new assistant message.
pub fn push_tool_call(messages: &mut Vec<agentbridge::Message>, call: ToolCall) {
    match messages.last_mut() {
        Some(m) if m.role == "assistant" => m.tool_calls.get_or_insert_with(Vec::new).push(call),
        _ => messages.push(agentbridge::Message {
            role: "assistant".into(),
            content: None,
            tool_calls: Some(vec![call]),
            tool_call_id: None,
            name: None,
        }),
    }
}

/// A `tool` message answering the call `tool_call_id`.
pub fn tool_result(tool_call_id: String, output: String) -> agentbridge::Message {
    agentbridge::Message {
        role: "tool".into(),
        content: Some(agentbridge::openai::Content::Text(output)),
        tool_calls: None,
        tool_call_id: Some(tool_call_id),
        name: None,
    }
}

/// A required string field of an item; `at` names the item (`input[2]`).
pub fn str_field<'a>(item: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str> {
    item.get(key).and_then(Value::as_str).ok_or_else(|| {
        let p = format!("{at}.{key}");
        bad(format!("{p} must be a string"), Some(&p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_reads_strings_and_parts() {
        let cases = [
            (json!("hi"), Some("hi")),
            (json!(null), Some("")),
            (
                json!([{"type": "input_text", "text": "a"}, {"type": "input_image"}, {"type": "text", "text": "b"}]),
                Some("a\nb"),
            ),
            (json!(["a", "b"]), Some("a\nb")),
            (json!(3), None),
            (json!([3]), None),
        ];
        for (v, want) in cases {
            assert_eq!(text(&v, "content").ok().as_deref(), want, "{v}");
        }
    }

    #[test]
    fn door_fields_are_dropped_and_the_rest_are_parameters() {
        let (model, obj) = json_object(
            br#"{"model": "m", "max_tokens": 5, "session_id": "s", "include_trace": true, "sessionState": {}}"#,
        )
        .unwrap();
        assert_eq!(model, "m");
        let r = request(vec![], obj, &["max_tokens"], true).unwrap();
        let mut keys: Vec<&str> = r.params.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["include_trace", "sessionState", "session_id"]);
        assert!(r.options.include_trace && r.options.stream);
        for body in [
            &b"{"[..],
            b"[]",
            br#"{"x": 1}"#,
            br#"{"model": 1}"#,
            br#"{"model": "m", "api_base": "x"}"#,
        ] {
            assert_eq!(json_object(body).unwrap_err().status(), 400);
        }
    }
}
