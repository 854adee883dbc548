//! Scripted answers, in the wire shapes real AgentCore agents produce (recorded from
//! `BedrockAgentCoreApp` + Strands in `tests/fixtures/agentcore/`).

use super::script::{Format, JsonShape, Script};
use crate::agent::Step;
use serde_json::{Value, json};

/// Usage of the n-th model call (0-based), as the test agents' scripted model reports it.
pub fn usage(call: u32) -> Value {
    let n = u64::from(call);
    let (input, output) = (120 + 60 * n, 15 + 10 * n);
    json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output})
}

/// A scripted answer: its content type and body steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `application/json` or `text/event-stream`.
    pub content_type: &'static str,
    /// The body, with any delays.
    pub steps: Vec<Step>,
}

/// The deltas of `text`: one per word, each after the first with its leading space.
pub fn deltas(text: &str) -> Vec<String> {
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

/// A Python `repr()` of a string (what Strands' fallback serialisation puts in its events).
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn sse(v: &Value) -> Vec<u8> {
    format!("data: {v}\n\n").into_bytes()
}

fn strands_message(text: &str, usage: &Value) -> Value {
    json!({"role": "assistant", "content": [{"text": text}],
           "metadata": {"usage": usage, "metrics": {"latencyMs": 1}}})
}

/// The scripted answer `text` in the format and shape `script` asks for.
pub fn build(script: &Script, text: &str) -> Answer {
    let mut events: Vec<Vec<u8>> = Vec::new();
    let content_type = match script.format {
        Format::Json => {
            events.push(json_body(script, text).to_string().into_bytes());
            "application/json"
        }
        Format::SseText => {
            for (i, d) in deltas(text).iter().enumerate() {
                if let Some(end) = cut(script, i) {
                    events.push(end);
                    break;
                }
                events.push(sse(&Value::String(d.clone())));
            }
            "text/event-stream; charset=utf-8"
        }
        Format::SseEvents => {
            strands_events(script, text, &mut events);
            "text/event-stream; charset=utf-8"
        }
    };
    let mut steps = Vec::new();
    for e in events {
        if e.is_empty() {
            steps.push(Step::Stall);
            continue;
        }
        if script.slow_ms > 0 {
            steps.push(Step::SleepMs(script.slow_ms));
        }
        steps.push(Step::Send(e));
    }
    Answer {
        content_type,
        steps,
    }
}

/// What ends the stream before delta `i`: the error event, or (empty) a stall.
fn cut(script: &Script, i: usize) -> Option<Vec<u8>> {
    if i != 2 {
        None
    } else if script.midstream_error {
        Some(sse(&midstream_error()))
    } else if script.stall {
        Some(Vec::new())
    } else {
        None
    }
}

/// The event BedrockAgentCoreApp sends when a streaming entrypoint raises.
fn midstream_error() -> Value {
    json!({"error": "Emulated failure in the agent's code", "error_type": "RuntimeError",
           "message": "An error occurred during streaming"})
}

fn json_body(script: &Script, text: &str) -> Value {
    let last = usage(script.calls.saturating_sub(1));
    match script.json {
        JsonShape::Strands => json!({"result": strands_message(text, &last)}),
        JsonShape::Message => {
            json!({"message": {"role": "assistant", "content": [{"text": text}]}})
        }
        JsonShape::A2a => json!({"jsonrpc": "2.0", "id": "emulated-1", "result": {"kind": "task",
            "message": {"role": "agent", "parts": [{"kind": "text", "text": text}]}}}),
        JsonShape::Content => json!({"result": {"content": [{"text": text}]}}),
        JsonShape::Response => json!({"response": [{"text": text}]}),
        JsonShape::ResultString => json!({"result": text}),
        JsonShape::ResponseString => json!({"response": text}),
        JsonShape::String => Value::String(text.to_string()),
        JsonShape::Other => json!({"answer": text}),
    }
}

const REPR_TAIL: &str = "'agent': <strands.agent.agent.Agent object at 0x7f00e0a0b0c0>, 'event_loop_cycle_id': UUID('00000000-0000-4000-8000-000000000000'), 'request_state': {}";

fn strands_events(script: &Script, text: &str, out: &mut Vec<Vec<u8>>) {
    out.push(sse(&json!({"init_event_loop": true})));
    out.push(sse(&json!({"start": true})));
    out.push(sse(&json!({"start_event_loop": true})));
    let tool_input = r#"{"city": "Berlin"}"#;
    for call in 0..script.calls {
        let u = usage(call);
        if call > 0 {
            out.push(sse(&json!({"start": true})));
            out.push(sse(&json!({"start": true})));
            out.push(sse(&json!({"start_event_loop": true})));
        }
        out.push(sse(
            &json!({"event": {"messageStart": {"role": "assistant"}}}),
        ));
        if call + 1 < script.calls {
            let id = format!("tooluse_emulated_{}", call + 1);
            out.push(sse(&json!({"event": {"contentBlockStart": {"start": {"toolUse": {"toolUseId": id, "name": "get_weather"}}}}})));
            out.push(sse(&json!({"event": {"contentBlockDelta": {"delta": {"toolUse": {"input": tool_input}}}}})));
            out.push(sse(&Value::String(format!(
                "{{'type': 'tool_use_stream', 'delta': {{'toolUse': {{'input': {}}}}}, 'current_tool_use': {{'toolUseId': {}, 'name': 'get_weather', 'input': {{'city': 'Berlin'}}}}, {REPR_TAIL}}}",
                py_repr(tool_input),
                py_repr(&id)
            ))));
            out.push(sse(&json!({"event": {"contentBlockStop": {}}})));
            out.push(sse(
                &json!({"event": {"messageStop": {"stopReason": "tool_use"}}}),
            ));
            out.push(sse(
                &json!({"event": {"metadata": {"usage": u, "metrics": {"latencyMs": 1}}}}),
            ));
            out.push(sse(&json!({"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": id, "name": "get_weather", "input": {"city": "Berlin"}}}],
                "metadata": {"usage": u, "metrics": {"latencyMs": 1}}}})));
            out.push(sse(&json!({"message": {"role": "user", "content": [{"toolResult": {"toolUseId": id, "status": "success",
                "content": [{"text": "sunny and 21 degrees in Berlin"}]}}]}})));
            continue;
        }
        for (i, d) in deltas(text).iter().enumerate() {
            if let Some(end) = cut(script, i) {
                out.push(end);
                return;
            }
            out.push(sse(
                &json!({"event": {"contentBlockDelta": {"delta": {"text": d}}}}),
            ));
            out.push(sse(&Value::String(format!(
                "{{'data': {r}, 'delta': {{'text': {r}}}, {REPR_TAIL}}}",
                r = py_repr(d)
            ))));
        }
        out.push(sse(&json!({"event": {"contentBlockStop": {}}})));
        out.push(sse(
            &json!({"event": {"messageStop": {"stopReason": "end_turn"}}}),
        ));
        out.push(sse(
            &json!({"event": {"metadata": {"usage": u, "metrics": {"latencyMs": 1}}}}),
        ));
        out.push(sse(&json!({"message": strands_message(text, &u)})));
        out.push(sse(&Value::String(format!(
            "{{'result': AgentResult(stop_reason='end_turn', message={{'role': 'assistant', 'content': [{{'text': {}}}]}}, state={{}})}}",
            py_repr(text)
        ))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(a: &Answer) -> String {
        let mut out = Vec::new();
        for s in &a.steps {
            if let Step::Send(b) = s {
                out.extend_from_slice(b);
            }
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn events(a: &Answer) -> Vec<Value> {
        body(a)
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap_or(Value::Null))
            .collect()
    }

    #[test]
    fn default_is_a_strands_result_json() {
        let a = build(&Script::from_payload(br#"{"prompt": "x"}"#), "Hi there");
        assert_eq!(a.content_type, "application/json");
        let v: Value = serde_json::from_str(&body(&a)).unwrap_or_default();
        assert_eq!(v["result"]["content"][0]["text"], "Hi there");
        assert_eq!(v["result"]["metadata"]["usage"]["inputTokens"], 120);
    }

    #[test]
    fn strands_events_carry_each_delta_once_as_json_and_usage_per_call() {
        let a = build(
            &Script::from_payload(b"emulate:sse emulate:calls=3"),
            "It's sunny today",
        );
        let ev = events(&a);
        let text: String = ev
            .iter()
            .filter_map(|e| {
                e.pointer("/event/contentBlockDelta/delta/text")
                    .and_then(Value::as_str)
            })
            .collect();
        assert_eq!(text, "It's sunny today");
        let usage: Vec<u64> = ev
            .iter()
            .filter_map(|e| {
                e.pointer("/event/metadata/usage/inputTokens")
                    .and_then(Value::as_u64)
            })
            .collect();
        assert_eq!(usage, [120, 180, 240]);
        assert!(ev.iter().any(|e| {
            e.as_str()
                .is_some_and(|s| s.starts_with("{'data': \"It's\""))
        }));
    }

    #[test]
    fn midstream_error_follows_two_deltas() {
        let a = build(
            &Script::from_payload(b"emulate:midstream_error"),
            "one two three four",
        );
        let ev = events(&a);
        assert_eq!(ev[..2], [json!("one"), json!(" two")]);
        assert_eq!(ev[2]["message"], "An error occurred during streaming");
        assert_eq!(ev.len(), 3);
    }

    #[test]
    fn stall_holds_the_stream_after_two_deltas() {
        let a = build(&Script::from_payload(b"emulate:stall"), "one two three");
        assert_eq!(a.steps.last(), Some(&Step::Stall));
        assert_eq!(a.steps.len(), 3);
    }

    #[test]
    fn json_shapes() {
        for (token, pointer) in [
            ("a2a", "/result/message/parts/0/text"),
            ("message", "/message/content/0/text"),
            ("content", "/result/content/0/text"),
            ("response", "/response/0/text"),
            ("result_string", "/result"),
            ("response_string", "/response"),
            ("string", ""),
            ("other", "/answer"),
        ] {
            let a = build(
                &Script::from_payload(format!("emulate:json={token}").as_bytes()),
                "T",
            );
            let v: Value = serde_json::from_str(&body(&a)).unwrap_or_default();
            assert_eq!(v.pointer(pointer), Some(&json!("T")), "{token}");
        }
    }
}
