//! The emulated agent: from one validated call to the frames of its answer.

use crate::frame;
use crate::script::Script;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The foundation model named in traces unless `emulate:model=` says otherwise.
pub const DEFAULT_MODEL: &str = "anthropic.claude-3-5-sonnet-20241022-v2:0";
/// Streamed answers are cut into pieces of this many bytes (even inside a character).
pub const STREAM_PIECE: usize = 24;
/// The API model's limit on one chunk (`PartBody`).
pub const MAX_CHUNK: usize = 1_000_000;

/// One step of the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Wait.
    SleepMs(u64),
    /// Send nothing more, but hold the connection open.
    Stall,
}

/// A call the agent answers.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// The agent ID.
    pub agent_id: String,
    /// The alias ID.
    pub alias_id: String,
    /// The session ID.
    pub session_id: String,
    /// `inputText`.
    pub input: String,
    /// Earlier user turns: from `conversationHistory` and the session memory.
    pub earlier_user_turns: Vec<String>,
    /// `streamingConfigurations.streamFinalResponse`.
    pub stream_final: bool,
    /// Bodies of `returnControlInvocationResults`, when the call answers a return of control.
    pub tool_results: Option<Vec<String>>,
    /// The behaviours asked for.
    pub script: Script,
    /// The invocation id to use if control is returned.
    pub invocation_id: String,
}

/// What the call produced, for the session memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The answer text.
    pub answer: String,
    /// Set when control was returned: the pending invocation id.
    pub pending_invocation: Option<String>,
}

/// The answer text for a call.
pub fn answer_text(call: &Call) -> String {
    let s = &call.script;
    if s.guardrail {
        return "Sorry, the model cannot answer this question.".into();
    }
    if let Some(results) = &call.tool_results {
        return format!("The tool returned: {}", results.join("; "));
    }
    if let Some(n) = s.big {
        let pattern = "The quick brown fox jumps over the lazy dog. ";
        return pattern.repeat(n / pattern.len() + 1)[..n].to_string();
    }
    if s.unicode {
        return "Grüße aus Köln — 日本語のテキスト — 🎉✨ done".into();
    }
    if call.input.to_lowercase().contains("what did i say") {
        return if call.earlier_user_turns.is_empty() {
            "You have not said anything before in this session.".into()
        } else {
            let quoted: Vec<String> = call
                .earlier_user_turns
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect();
            format!("You said: {}", quoted.join("; "))
        };
    }
    if s.citations {
        return "Q3 revenue grew 12% year over year. Churn fell to 3%.".into();
    }
    format!(
        "Emulated agent {} (alias {}) received: {}",
        call.agent_id, call.alias_id, call.input
    )
}

fn trace(call: &Call, step: Value) -> Vec<u8> {
    frame::event(
        "trace",
        &json!({
            "agentId": call.agent_id,
            "agentAliasId": call.alias_id,
            "agentVersion": "1",
            "sessionId": call.session_id,
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "trace": step,
        }),
    )
}

fn model_io(
    kind: &str,
    prompt_type: &str,
    model: &str,
    input_tokens: u64,
    output_tokens: u64,
    trace_id: &str,
) -> [Value; 2] {
    let output_member = if kind == "preProcessingTrace" {
        json!({"traceId": trace_id, "parsedResponse": {"isValid": true, "rationale": "The input is a valid request."},
               "metadata": {"usage": {"inputTokens": input_tokens, "outputTokens": output_tokens}}})
    } else {
        json!({"traceId": trace_id, "rawResponse": {"content": "..."},
               "metadata": {"usage": {"inputTokens": input_tokens, "outputTokens": output_tokens}}})
    };
    [
        json!({ kind: {"modelInvocationInput": {"traceId": trace_id, "type": prompt_type, "foundationModel": model,
            "text": "{\"system\": \"...\"}", "inferenceConfiguration": {"temperature": 0, "topP": 1, "maximumLength": 2048}}}}),
        json!({ kind: {"modelInvocationOutput": output_member}}),
    ]
}

/// Token usage the emulator reports for a call: (pre, orchestration, post) as (in, out).
pub fn usage(call: &Call, answer: &str) -> [(u64, u64); 3] {
    let words = call.input.split_whitespace().count() as u64;
    [
        (200 + words, 25),
        (600 + 2 * words, answer.len() as u64 / 4 + 10),
        (150, 30),
    ]
}

fn chunk_frames(answer: &str, stream: bool, attribution: Option<Value>) -> Vec<Vec<u8>> {
    let size = if stream { STREAM_PIECE } else { MAX_CHUNK };
    let bytes = answer.as_bytes();
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(size).collect()
    };
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut payload = json!({"bytes": STANDARD.encode(p)});
            if i + 1 == n
                && let Some(a) = &attribution
            {
                payload["attribution"] = a.clone();
            }
            frame::event("chunk", &payload)
        })
        .collect()
}

fn citations(answer: &str) -> Value {
    let first_end = answer.find('.').map(|i| i + 1).unwrap_or(answer.len());
    json!({"citations": [
        {"generatedResponsePart": {"textResponsePart": {"text": &answer[..first_end], "span": {"start": 0, "end": first_end}}},
         "retrievedReferences": [{"content": {"text": "Q3 revenue: +12% YoY", "type": "TEXT"},
            "location": {"type": "S3", "s3Location": {"uri": "s3://emulator-kb/reports/q3-2026.pdf"}},
            "metadata": {"x-amz-bedrock-kb-source-uri": "s3://emulator-kb/reports/q3-2026.pdf"}}]},
        {"generatedResponsePart": {"textResponsePart": {"text": &answer[first_end..], "span": {"start": first_end + 1, "end": answer.len()}}},
         "retrievedReferences": [{"content": {"text": "Churn 3%", "type": "TEXT"},
            "location": {"type": "WEB", "webLocation": {"url": "https://example.com/churn"}}}]}
    ]})
}

fn return_control(call: &Call) -> Value {
    let input = if call.script.return_control == Some(true) {
        json!({"apiInvocationInput": {"actionGroup": "OrdersAPI", "actionInvocationType": "RESULT",
            "apiPath": "/orders/{orderId}", "httpMethod": "GET",
            "parameters": [{"name": "orderId", "type": "string", "value": "A-42"}]}})
    } else {
        json!({"functionInvocationInput": {"actionGroup": "WeatherAPI", "actionInvocationType": "RESULT",
            "function": "get_forecast",
            "parameters": [{"name": "city", "type": "string", "value": "Paris"},
                           {"name": "days", "type": "integer", "value": "3"}]}})
    };
    json!({"invocationId": call.invocation_id, "invocationInputs": [input]})
}

/// The steps of the answer to `call`, and what the session should remember.
pub fn respond(call: &Call) -> (Vec<Step>, Outcome) {
    let s = &call.script;
    let model = s.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into());
    let answer = answer_text(call);
    let [pre, orch, post] = usage(call, &answer);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut outcome = Outcome {
        answer: answer.clone(),
        pending_invocation: None,
    };

    if s.multistep && !s.guardrail && s.return_control.is_none() {
        let chunks = chunk_frames(&answer, call.stream_final, None);
        return (
            crate::multistep::respond(call, &model, &answer, chunks),
            outcome,
        );
    }
    for t in model_io(
        "preProcessingTrace",
        "PRE_PROCESSING",
        &model,
        pre.0,
        pre.1,
        "emu-pre-0",
    ) {
        frames.push(trace(call, t));
    }
    if s.guardrail {
        frames.push(trace(call, json!({"guardrailTrace": {"action": "INTERVENED", "traceId": "emu-guard-0",
            "inputAssessments": [{"topicPolicy": {"topics": [{"name": "Denied", "type": "DENY", "action": "BLOCKED"}]}}]}})));
        frames.extend(chunk_frames(&answer, call.stream_final, None));
        return (frames.into_iter().map(Step::Send).collect(), outcome);
    }
    for t in model_io(
        "orchestrationTrace",
        "ORCHESTRATION",
        &model,
        orch.0,
        orch.1,
        "emu-orch-0",
    ) {
        frames.push(trace(call, t));
    }
    frames.push(trace(
        call,
        json!({"orchestrationTrace": {"rationale": {"traceId": "emu-orch-0",
        "text": "I will answer the user's request."}}}),
    ));
    if s.return_control.is_some() && call.tool_results.is_none() {
        frames.push(frame::event("returnControl", &return_control(call)));
        outcome.answer.clear();
        outcome.pending_invocation = Some(call.invocation_id.clone());
        return (frames.into_iter().map(Step::Send).collect(), outcome);
    }
    if s.citations {
        frames.push(trace(call, json!({"orchestrationTrace": {"invocationInput": {"traceId": "emu-orch-0",
            "invocationType": "KNOWLEDGE_BASE", "knowledgeBaseLookupInput": {"knowledgeBaseId": "EMUKB00001", "text": call.input}}}})));
    }
    frames.push(trace(call, json!({"orchestrationTrace": {"observation": {"traceId": "emu-orch-0", "type": "FINISH",
        "finalResponse": {"text": if answer.len() > 4096 { "(long answer)" } else { answer.as_str() }}}}})));

    let mut steps: Vec<Step> = frames.drain(..).map(Step::Send).collect();
    let chunks = chunk_frames(
        &answer,
        call.stream_final,
        s.citations.then(|| citations(&answer)),
    );
    let fault = s.exception.is_some() || s.stall || s.corrupt || s.truncate;
    for (i, c) in chunks.into_iter().enumerate() {
        if s.slow_ms > 0 {
            steps.push(Step::SleepMs(s.slow_ms));
        }
        steps.push(Step::Send(c));
        if i == 0 && fault {
            steps.push(fault_step(s));
            return (steps, outcome);
        }
    }
    if s.files {
        steps.push(Step::Send(frame::event(
            "files",
            &json!({"files": [{"name": "summary.csv", "type": "text/csv",
            "bytes": STANDARD.encode("quarter,revenue\nQ3,112\n")}]}),
        )));
    }
    for t in model_io(
        "postProcessingTrace",
        "POST_PROCESSING",
        &model,
        post.0,
        post.1,
        "emu-post-0",
    ) {
        steps.push(Step::Send(trace(call, t)));
    }
    (steps, outcome)
}

fn fault_step(s: &Script) -> Step {
    if let Some(name) = &s.exception {
        let mut event = name.clone();
        if let Some(first) = event.get_mut(0..1) {
            first.make_ascii_lowercase();
        }
        Step::Send(frame::exception(
            &event,
            &format!("Emulated {name} during the stream"),
        ))
    } else if s.stall {
        Step::Stall
    } else if s.corrupt {
        let mut f = frame::event("chunk", &json!({"bytes": STANDARD.encode("corrupted")}));
        let n = f.len();
        f[n - 1] ^= 0xff;
        Step::Send(f)
    } else {
        let f = frame::event("chunk", &json!({"bytes": STANDARD.encode("truncated")}));
        Step::Send(f[..f.len() / 2].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(input: &str, stream: bool) -> Call {
        Call {
            agent_id: "A1".into(),
            alias_id: "B1".into(),
            session_id: "s1".into(),
            input: input.into(),
            stream_final: stream,
            script: Script::parse(input),
            invocation_id: "inv-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_answer_has_usage_in_three_trace_steps_and_one_chunk() {
        let (steps, out) = respond(&call("hello", false));
        assert!(out.answer.contains("hello"));
        assert_eq!(steps.len(), 2 + 2 + 1 + 1 + 1 + 2);
    }

    #[test]
    fn streamed_answer_is_cut_into_pieces() {
        let (single, _) = respond(&call("hello there, a longer question to answer", false));
        let (streamed, _) = respond(&call("hello there, a longer question to answer", true));
        assert!(streamed.len() > single.len() + 1);
    }

    #[test]
    fn return_control_stops_the_turn_and_remembers_the_invocation() {
        let (steps, out) = respond(&call("weather? emulate:return_control", false));
        assert_eq!(out.pending_invocation.as_deref(), Some("inv-1"));
        assert!(matches!(steps.last(), Some(Step::Send(_))));
    }

    #[test]
    fn faults_come_after_the_first_chunk() {
        assert_eq!(
            respond(&call("x emulate:stall", true)).0.last(),
            Some(&Step::Stall)
        );
    }
}
