//! Checks an InvokeAgent call against the API model's patterns and limits. Unknown
//! top-level members are accepted (as the service does) and recorded by the server.

use serde_json::{Map, Value};

/// `^[0-9a-zA-Z]+$`, at most 10.
pub fn id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `^[0-9a-zA-Z._:-]+$`, 2 to 100.
pub fn session(s: &str) -> bool {
    (2..=100).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b))
}

type Check = Result<(), String>;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "structure",
    }
}

fn expect<'a>(v: &'a Value, want: &str, at: &str) -> Result<&'a Value, String> {
    if kind(v) == want {
        Ok(v)
    } else {
        Err(format!("{at}: expected {want}, got {}", kind(v)))
    }
}

fn string_map(v: &Value, at: &str) -> Check {
    for (k, val) in expect(v, "structure", at)?
        .as_object()
        .into_iter()
        .flatten()
    {
        expect(val, "string", &format!("{at}.{k}"))?;
    }
    Ok(())
}

fn optional<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    m.get(k).filter(|v| !v.is_null())
}

/// Validates the body. Returns the `ValidationException` message on failure.
pub fn body(body: &Value) -> Check {
    let m = expect(body, "structure", "body")?
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some(t) = optional(&m, "inputText") {
        let t = expect(t, "string", "inputText")?
            .as_str()
            .unwrap_or_default();
        if t.len() > 25_000_000 {
            return Err("inputText: length must be at most 25000000".into());
        }
    }
    for b in ["enableTrace", "endSession"] {
        if let Some(v) = optional(&m, b) {
            expect(v, "boolean", b)?;
        }
    }
    if let Some(v) = optional(&m, "memoryId") {
        let s = expect(v, "string", "memoryId")?
            .as_str()
            .unwrap_or_default();
        if !session(s) {
            return Err("memoryId: must match ^[0-9a-zA-Z._:-]+$ with length 2-100".into());
        }
    }
    if let Some(v) = optional(&m, "streamingConfigurations") {
        let sc = expect(v, "structure", "streamingConfigurations")?;
        if let Some(b) = sc.get("streamFinalResponse").filter(|v| !v.is_null()) {
            expect(b, "boolean", "streamingConfigurations.streamFinalResponse")?;
        }
        if let Some(i) = sc.get("applyGuardrailInterval").filter(|v| !v.is_null())
            && i.as_u64().is_none_or(|n| n < 1)
        {
            return Err(
                "streamingConfigurations.applyGuardrailInterval: must be an integer >= 1".into(),
            );
        }
    }
    if let Some(v) = optional(&m, "promptCreationConfigurations") {
        let p = expect(v, "structure", "promptCreationConfigurations")?;
        if let Some(n) = p
            .get("previousConversationTurnsToInclude")
            .filter(|v| !v.is_null())
            && n.as_u64().is_none()
        {
            return Err("promptCreationConfigurations.previousConversationTurnsToInclude: must be an integer >= 0".into());
        }
    }
    if let Some(v) = optional(&m, "sessionState") {
        session_state(v)?;
    }
    Ok(())
}

fn session_state(v: &Value) -> Check {
    let s = expect(v, "structure", "sessionState")?
        .as_object()
        .cloned()
        .unwrap_or_default();
    for k in ["sessionAttributes", "promptSessionAttributes"] {
        if let Some(v) = optional(&s, k) {
            string_map(v, &format!("sessionState.{k}"))?;
        }
    }
    if let Some(v) = optional(&s, "invocationId") {
        expect(v, "string", "sessionState.invocationId")?;
    }
    if let Some(h) = optional(&s, "conversationHistory") {
        let h = expect(h, "structure", "sessionState.conversationHistory")?;
        for (i, msg) in h
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("sessionState.conversationHistory.messages[{i}]");
            let role = msg.get("role").and_then(Value::as_str).unwrap_or_default();
            if role != "user" && role != "assistant" {
                return Err(format!("{at}.role: must be one of user, assistant"));
            }
            let content = msg
                .get("content")
                .and_then(Value::as_array)
                .ok_or(format!("{at}.content: required list"))?;
            for (j, block) in content.iter().enumerate() {
                expect(
                    block.get("text").unwrap_or(&Value::Null),
                    "string",
                    &format!("{at}.content[{j}].text"),
                )?;
            }
        }
    }
    if let Some(r) = optional(&s, "returnControlInvocationResults") {
        let list = expect(r, "list", "sessionState.returnControlInvocationResults")?
            .as_array()
            .cloned()
            .unwrap_or_default();
        if list.is_empty() || list.len() > 5 {
            return Err(
                "sessionState.returnControlInvocationResults: must have 1 to 5 members".into(),
            );
        }
        for (i, item) in list.iter().enumerate() {
            let at = format!("sessionState.returnControlInvocationResults[{i}]");
            let obj = expect(item, "structure", &at)?
                .as_object()
                .cloned()
                .unwrap_or_default();
            let members: Vec<&String> = obj
                .keys()
                .filter(|k| *k == "apiResult" || *k == "functionResult")
                .collect();
            if members.len() != 1 || obj.len() != 1 {
                return Err(format!(
                    "{at}: exactly one of apiResult, functionResult must be set"
                ));
            }
            let inner = &obj[members[0].as_str()];
            expect(
                inner.get("actionGroup").unwrap_or(&Value::Null),
                "string",
                &format!("{at}.{}.actionGroup", members[0]),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_what_the_gateway_sends_and_unknown_members() {
        body(&json!({"inputText": "hi", "enableTrace": true, "invocationId": "x", "memoryId": "mem-1",
            "streamingConfigurations": {"streamFinalResponse": true},
            "sessionState": {"conversationHistory": {"messages": [{"role": "user", "content": [{"text": "a"}]}]},
                "promptSessionAttributes": {"system": "s"}}}))
        .unwrap();
    }

    #[test]
    fn rejects_what_the_api_model_forbids() {
        for (b, needle) in [
            (json!([]), "body"),
            (json!({"inputText": 3}), "inputText"),
            (json!({"enableTrace": "yes"}), "enableTrace"),
            (json!({"memoryId": "x"}), "memoryId"),
            (
                json!({"sessionState": {"sessionAttributes": {"a": 1}}}),
                "sessionAttributes.a",
            ),
            (
                json!({"sessionState": {"returnControlInvocationResults": []}}),
                "1 to 5",
            ),
            (
                json!({"sessionState": {"conversationHistory": {"messages": [{"role": "system", "content": []}]}}}),
                "role",
            ),
            (
                json!({"streamingConfigurations": {"applyGuardrailInterval": 0}}),
                "applyGuardrailInterval",
            ),
        ] {
            let e = body(&b).unwrap_err();
            assert!(e.contains(needle), "{b}: {e}");
        }
        assert!(!id("toolongagentid") && !id("a-b") && id("L1RT58GYRW"));
        assert!(!session("a") && session("abc-1.2:3_x"));
    }
}
