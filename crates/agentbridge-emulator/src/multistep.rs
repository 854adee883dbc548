//! `emulate:multistep`: a supervisor agent's turn with a multi-step trace, written as time
//! passes. Pre-processing; an orchestration step that calls an action group; one that looks
//! up a knowledge base; one that hands over to a collaborator agent (whose own model call is
//! traced with its `callerChain` and `collaboratorName`); a guardrail check; the step that
//! answers; post-processing. Each model invocation, action group, knowledge-base and
//! collaborator output carries `metadata.startTime` / `endTime` / `totalTimeMs` (and usage
//! for model invocations) as the API model has them; each part's `eventTime` is when it is
//! sent, because the emulator waits for each step's duration before sending it.

use crate::agent::{Call, Step};
use crate::frame;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The collaborator agent the supervisor hands over to.
pub const COLLABORATOR: &str = "billing-agent";
/// The action group and function called.
pub const ACTION_GROUP: (&str, &str) = ("WeatherAPI", "get_forecast");
/// The knowledge base looked up.
pub const KNOWLEDGE_BASE: &str = "EMUKB00001";

/// Model invocations: (trace step, trace id, duration ms, input tokens, output tokens).
const MODEL_CALLS: [(&str, &str, i64, u64, u64); 6] = [
    ("preProcessingTrace", "emu-pre-0", 30, 210, 25),
    ("orchestrationTrace", "emu-orch-0", 40, 610, 30),
    ("orchestrationTrace", "emu-orch-1", 30, 700, 28),
    ("orchestrationTrace", "emu-collab-0", 35, 180, 22),
    ("orchestrationTrace", "emu-orch-3", 30, 820, 60),
    ("postProcessingTrace", "emu-post-0", 20, 150, 30),
];

/// Tokens the multi-step turn reports, summed over its model invocations.
pub fn usage() -> (u64, u64) {
    MODEL_CALLS
        .iter()
        .fold((0, 0), |(i, o), c| (i + c.3, o + c.4))
}

/// The frames, as they would be written over time.
struct Timeline<'a> {
    call: &'a Call,
    start: DateTime<Utc>,
    /// Milliseconds since `start` of the last frame.
    now: i64,
    steps: Vec<Step>,
}

impl Timeline<'_> {
    fn at(&self, ms: i64) -> String {
        (self.start + chrono::Duration::milliseconds(ms))
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    fn meta(&self, from: i64, to: i64) -> Value {
        json!({"startTime": self.at(from), "endTime": self.at(to), "totalTimeMs": to - from})
    }

    /// Sends a trace part `wait` ms after the last one.
    fn part(&mut self, wait: i64, trace: Value, collaborator: bool) {
        if wait > 0 {
            self.steps.push(Step::SleepMs(wait as u64));
            self.now += wait;
        }
        let c = self.call;
        let mut part = json!({"agentId": c.agent_id, "agentAliasId": c.alias_id, "agentVersion": "1",
            "sessionId": c.session_id, "eventTime": self.at(self.now), "trace": trace});
        if collaborator {
            part["collaboratorName"] = json!(COLLABORATOR);
            part["callerChain"] = json!([
                {"agentAliasArn": format!("arn:aws:bedrock:us-east-1:123456789012:agent-alias/{}/{}", c.agent_id, c.alias_id)},
                {"agentAliasArn": "arn:aws:bedrock:us-east-1:123456789012:agent-alias/BILLING001/LIVE000001"}
            ]);
        }
        self.steps.push(Step::Send(frame::event("trace", &part)));
    }

    /// A model invocation: its input part now, its output part when it is done.
    fn model(&mut self, i: usize, model: &str, collaborator: bool) {
        let (step, id, ms, input, output) = MODEL_CALLS[i];
        let kind = step
            .strip_suffix("Trace")
            .unwrap_or(step)
            .to_ascii_uppercase();
        self.part(
            1,
            json!({step: {"modelInvocationInput": {"traceId": id, "type": kind, "foundationModel": model,
                "text": "{\"system\": \"...\"}", "inferenceConfiguration": {"temperature": 0, "maximumLength": 2048}}}}),
            collaborator,
        );
        let from = self.now;
        let meta = {
            let mut m = self.meta(from, from + ms);
            m["usage"] = json!({"inputTokens": input, "outputTokens": output});
            m
        };
        self.part(
            ms,
            json!({step: {"modelInvocationOutput": {"traceId": id, "rawResponse": {"content": "..."}, "metadata": meta}}}),
            collaborator,
        );
    }

    /// An orchestration invocation (`invocationInput`, then its `observation` after `ms`).
    fn invocation(&mut self, id: &str, kind: &str, input: Value, output: (&str, Value), ms: i64) {
        let mut inv = json!({"traceId": id, "invocationType": kind});
        if let (Some(o), Some(i)) = (inv.as_object_mut(), input.as_object()) {
            o.extend(i.clone());
        }
        self.part(
            1,
            json!({"orchestrationTrace": {"invocationInput": inv}}),
            false,
        );
        let from = self.now;
        let mut out = output.1;
        out["metadata"] = self.meta(from, from + ms);
        self.part(
            ms,
            json!({"orchestrationTrace": {"observation": {"traceId": id, "type": kind, output.0: out}}}),
            false,
        );
    }
}

/// The frames of a multi-step turn answering `answer` (whose chunk frames are `chunks`),
/// with the waits between them: the trace, the chunks, post-processing.
pub fn respond(call: &Call, model: &str, answer: &str, chunks: Vec<Vec<u8>>) -> Vec<Step> {
    let mut t = Timeline {
        call,
        start: Utc::now(),
        now: 0,
        steps: Vec::new(),
    };
    t.model(0, model, false);
    t.model(1, model, false);
    let (group, function) = ACTION_GROUP;
    t.invocation(
        "emu-orch-0",
        "ACTION_GROUP",
        json!({"actionGroupInvocationInput": {"actionGroupName": group, "function": function,
            "executionType": "LAMBDA", "invocationId": format!("{}-ag", call.invocation_id),
            "parameters": [{"name": "city", "type": "string", "value": "Paris"}]}}),
        (
            "actionGroupInvocationOutput",
            json!({"text": "{\"forecast\": \"sunny\"}"}),
        ),
        20,
    );
    t.model(2, model, false);
    t.invocation(
        "emu-orch-1",
        "KNOWLEDGE_BASE",
        json!({"knowledgeBaseLookupInput": {"knowledgeBaseId": KNOWLEDGE_BASE, "text": call.input}}),
        ("knowledgeBaseLookupOutput", json!({"retrievedReferences": []})),
        25,
    );
    // The hand-over: the supervisor's input part, the collaborator's own trace, the output.
    let arn = "arn:aws:bedrock:us-east-1:123456789012:agent-alias/BILLING001/LIVE000001";
    t.part(
        1,
        json!({"orchestrationTrace": {"invocationInput": {"traceId": "emu-orch-2", "invocationType": "AGENT_COLLABORATOR",
            "agentCollaboratorInvocationInput": {"agentCollaboratorName": COLLABORATOR, "agentCollaboratorAliasArn": arn,
                "input": {"type": "TEXT", "text": call.input}}}}}),
        false,
    );
    let from = t.now;
    t.model(3, model, true);
    t.steps.push(Step::SleepMs(5));
    t.now += 5;
    let meta = t.meta(from, t.now);
    t.part(
        1,
        json!({"orchestrationTrace": {"observation": {"traceId": "emu-orch-2", "type": "AGENT_COLLABORATOR",
            "agentCollaboratorInvocationOutput": {"agentCollaboratorName": COLLABORATOR, "agentCollaboratorAliasArn": arn,
                "output": {"type": "TEXT", "text": "Your invoice is paid."}, "metadata": meta}}}}),
        false,
    );
    let from = t.now;
    let meta = t.meta(from, from + 5);
    t.part(
        5,
        json!({"guardrailTrace": {"traceId": "emu-guard-0", "action": "NONE", "inputAssessments": [{}], "metadata": meta}}),
        false,
    );
    t.model(4, model, false);
    t.part(
        1,
        json!({"orchestrationTrace": {"observation": {"traceId": "emu-orch-3", "type": "FINISH",
            "finalResponse": {"text": answer}}}}),
        false,
    );
    t.steps.extend(chunks.into_iter().map(Step::Send));
    t.model(5, model, false);
    t.steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_trace_has_every_kind_of_step_and_waits_between_them() {
        let call = Call {
            agent_id: "A1".into(),
            alias_id: "B1".into(),
            session_id: "s1".into(),
            input: "hi".into(),
            ..Default::default()
        };
        let steps = respond(&call, "m", "answer", vec![b"chunk".to_vec()]);
        let text: String = steps
            .iter()
            .filter_map(|s| match s {
                Step::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect();
        for key in [
            "preProcessingTrace",
            "actionGroupInvocationInput",
            "knowledgeBaseLookupOutput",
            "agentCollaboratorInvocationOutput",
            "\"collaboratorName\":\"billing-agent\"",
            "guardrailTrace",
            "finalResponse",
            "totalTimeMs",
        ] {
            assert!(text.contains(key), "{key}");
        }
        let waited: u64 = steps
            .iter()
            .map(|s| match s {
                Step::SleepMs(ms) => *ms,
                _ => 0,
            })
            .sum();
        assert!(waited >= 200, "{waited}");
        assert_eq!(usage(), (2670, 195));
    }
}
