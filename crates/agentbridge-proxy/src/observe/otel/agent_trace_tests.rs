use super::*;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms)
}

fn iso(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from(at(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn part(ms: u64, trace: Value) -> Value {
    json!({"agentId": "AGENT1", "agentAliasId": "ALIAS1", "sessionId": "s", "eventTime": iso(ms), "trace": trace})
}

fn meta(start: u64, end: u64, usage: Option<(u64, u64)>) -> Value {
    let mut m = json!({"startTime": iso(start), "endTime": iso(end), "totalTimeMs": end - start});
    if let Some((i, o)) = usage {
        m["usage"] = json!({"inputTokens": i, "outputTokens": o});
    }
    m
}

fn collect(parts: &[Value]) -> Vec<Planned> {
    let mut c = Collector::default();
    for p in parts {
        c.accept(p, at(999_999));
    }
    c.plan()
}

fn str_of<'a>(s: &'a Planned, k: &str) -> Option<&'a str> {
    match s.attr(k) {
        Some(AttrValue::Str(v)) => Some(v),
        _ => None,
    }
}

fn int_of(s: &Planned, k: &str) -> Option<i64> {
    match s.attr(k) {
        Some(AttrValue::Int(v)) => Some(*v),
        _ => None,
    }
}

/// A supervisor's turn: pre-processing, an orchestration step calling an action group, a
/// step looking up a knowledge base, a step handing over to a collaborator (whose own
/// model call is in the trace), a guardrail, post-processing.
fn multi_step() -> Vec<Value> {
    let secret = "the user's secret prompt";
    vec![
        part(
            10,
            json!({"preProcessingTrace": {"modelInvocationInput": {"traceId": "t-pre", "foundationModel": "m-pre", "text": secret}}}),
        ),
        part(
            60,
            json!({"preProcessingTrace": {"modelInvocationOutput": {"traceId": "t-pre", "parsedResponse": {"rationale": secret}, "metadata": meta(12, 58, Some((100, 10)))}}}),
        ),
        part(
            70,
            json!({"orchestrationTrace": {"modelInvocationInput": {"traceId": "t-0", "foundationModel": "m-orch", "text": secret}}}),
        ),
        part(
            120,
            json!({"orchestrationTrace": {"modelInvocationOutput": {"traceId": "t-0", "rawResponse": {"content": secret}, "metadata": meta(71, 118, Some((500, 40)))}}}),
        ),
        part(
            121,
            json!({"orchestrationTrace": {"rationale": {"traceId": "t-0", "text": secret}}}),
        ),
        part(
            122,
            json!({"orchestrationTrace": {"invocationInput": {"traceId": "t-0", "invocationType": "ACTION_GROUP",
                "actionGroupInvocationInput": {"actionGroupName": "WeatherAPI", "function": "get_forecast", "invocationId": "inv-1",
                    "parameters": [{"name": "city", "value": secret}]}}}}),
        ),
        part(
            150,
            json!({"orchestrationTrace": {"observation": {"traceId": "t-0", "type": "ACTION_GROUP",
                "actionGroupInvocationOutput": {"text": secret, "metadata": meta(123, 149, None)}}}}),
        ),
        part(
            160,
            json!({"orchestrationTrace": {"invocationInput": {"traceId": "t-1", "invocationType": "KNOWLEDGE_BASE",
                "knowledgeBaseLookupInput": {"knowledgeBaseId": "KB1", "text": secret}}}}),
        ),
        part(
            190,
            json!({"orchestrationTrace": {"observation": {"traceId": "t-1", "type": "KNOWLEDGE_BASE",
                "knowledgeBaseLookupOutput": {"retrievedReferences": [{"content": {"text": secret}}], "metadata": {"totalTimeMs": 25}}}}}),
        ),
        part(
            200,
            json!({"orchestrationTrace": {"invocationInput": {"traceId": "t-2", "invocationType": "AGENT_COLLABORATOR",
                "agentCollaboratorInvocationInput": {"agentCollaboratorName": "billing", "agentCollaboratorAliasArn": "arn:aws:bedrock:us-east-1:1:agent-alias/B/C", "input": {"text": secret}}}}}),
        ),
        {
            let mut p = part(
                230,
                json!({"orchestrationTrace": {"modelInvocationOutput": {"traceId": "c-0", "metadata": meta(205, 228, Some((50, 5)))}}}),
            );
            p["collaboratorName"] = json!("billing");
            p["callerChain"] = json!([{"agentAliasArn": "sup"}, {"agentAliasArn": "billing"}]);
            p
        },
        part(
            260,
            json!({"orchestrationTrace": {"observation": {"traceId": "t-2", "type": "AGENT_COLLABORATOR",
                "agentCollaboratorInvocationOutput": {"agentCollaboratorName": "billing", "output": {"text": secret}, "metadata": meta(201, 259, None)}}}}),
        ),
        part(
            265,
            json!({"guardrailTrace": {"traceId": "g-0", "action": "NONE", "metadata": meta(261, 264, None)}}),
        ),
        part(
            270,
            json!({"postProcessingTrace": {"modelInvocationInput": {"traceId": "t-post", "foundationModel": "m-pre", "text": secret}}}),
        ),
        part(
            300,
            json!({"postProcessingTrace": {"modelInvocationOutput": {"traceId": "t-post", "metadata": {"usage": {"inputTokens": 20, "outputTokens": 3}}}}}),
        ),
    ]
}

#[test]
fn every_step_of_a_multi_step_trace_becomes_a_span_under_its_step() {
    let plan = collect(&multi_step());
    let names: Vec<&str> = plan.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pre_processing",
            "chat m-pre",
            "orchestration",
            "chat m-orch",
            "execute_tool get_forecast",
            "orchestration",
            "retrieval KB1",
            "orchestration",
            "invoke_agent billing",
            "orchestration",
            "chat",
            "guardrail",
            "post_processing",
            "chat m-pre",
        ]
    );
    let parent = |i: usize| plan[i].parent;
    assert_eq!(parent(0), None);
    assert_eq!(parent(1), Some(0));
    assert_eq!((parent(3), parent(4)), (Some(2), Some(2)));
    assert_eq!(parent(6), Some(5));
    assert_eq!(parent(8), Some(7));
    // The collaborator's own step sits under the collaborator's invoke_agent span.
    assert_eq!((parent(9), parent(10)), (Some(8), Some(9)));
    assert_eq!((parent(11), parent(12), parent(13)), (None, None, Some(12)));
}

#[test]
fn spans_carry_the_conventions_attributes_and_no_content() {
    let plan = collect(&multi_step());
    let chat = &plan[3];
    assert_eq!(chat.kind, Kind::Client);
    assert_eq!(str_of(chat, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_of(chat, "gen_ai.request.model"), Some("m-orch"));
    assert_eq!(int_of(chat, "gen_ai.usage.input_tokens"), Some(500));
    assert_eq!(int_of(chat, "gen_ai.usage.output_tokens"), Some(40));
    let tool = &plan[4];
    assert_eq!(str_of(tool, "gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(str_of(tool, "gen_ai.tool.name"), Some("get_forecast"));
    assert_eq!(str_of(tool, "gen_ai.tool.call.id"), Some("inv-1"));
    assert_eq!(
        str_of(tool, "aws.bedrock.agent.action_group"),
        Some("WeatherAPI")
    );
    assert_eq!(str_of(&plan[6], "gen_ai.data_source.id"), Some("KB1"));
    assert_eq!(str_of(&plan[8], "gen_ai.agent.name"), Some("billing"));
    assert_eq!(
        str_of(&plan[8], "gen_ai.agent.id"),
        Some("arn:aws:bedrock:us-east-1:1:agent-alias/B/C")
    );
    assert_eq!(
        str_of(&plan[11], "aws.bedrock.guardrail.action"),
        Some("NONE")
    );
    assert_eq!(
        str_of(&plan[0], "aws.bedrock.agent.trace.step"),
        Some("PRE_PROCESSING")
    );
    let all = format!("{plan:?}");
    assert!(!all.contains("secret"), "{all}");
}

#[test]
fn times_come_from_the_metadata_then_the_event_times() {
    let plan = collect(&multi_step());
    // startTime/endTime of the model invocation.
    assert_eq!((plan[3].start, plan[3].end), (at(71), at(118)));
    // The action group: its output's metadata.
    assert_eq!((plan[4].start, plan[4].end), (at(123), at(149)));
    // The knowledge base: only totalTimeMs, ending when its output part was written.
    assert_eq!((plan[6].start, plan[6].end), (at(165), at(190)));
    // Post-processing's output has no times: input part to output part.
    assert_eq!((plan[13].start, plan[13].end), (at(270), at(300)));
    // A step spans its calls; the pre-processing step starts with its input part.
    assert_eq!((plan[2].start, plan[2].end), (at(70), at(150)));
    assert_eq!((plan[0].start, plan[0].end), (at(10), at(60)));
    // The collaborator call: its output's metadata (it spans its own steps, 205..230).
    assert_eq!((plan[8].start, plan[8].end), (at(201), at(259)));
    assert_eq!((plan[9].start, plan[9].end), (at(205), at(230)));
    assert!(plan.iter().all(|s| s.start <= s.end));
}

#[test]
fn parts_without_event_time_use_the_time_received_and_others_are_ignored() {
    let mut c = Collector::default();
    c.accept(&json!({"type": "tool_use", "name": "x"}), at(1));
    c.accept(&json!({"trace": {"somethingNew": {}}}), at(1));
    assert!(c.is_empty());
    c.accept(
        &json!({"trace": {"failureTrace": {"traceId": "f", "failureCode": 500, "failureReason": "secret"}}}),
        at(7),
    );
    let plan = c.plan();
    assert_eq!(plan.len(), 1);
    assert_eq!((plan[0].start, plan[0].end), (at(7), at(7)));
    assert_eq!(plan[0].error.as_deref(), Some("500"));
}

#[test]
fn a_long_trace_is_capped() {
    let mut c = Collector::default();
    for i in 0..(MAX_SPANS as u64 * 3) {
        c.accept(
            &part(
                i,
                json!({"orchestrationTrace": {"modelInvocationInput": {"traceId": format!("t-{i}"), "foundationModel": "m"}}}),
            ),
            at(0),
        );
    }
    assert_eq!(c.plan().len(), MAX_SPANS);
}
