//! Bedrock Agents' trace parts, read for spans: only the step, its trace id, the model, token
//! counts, names and ids of what was called, guardrail actions, failure codes and times. The
//! prompt, the model's output, rationales, tool arguments and results are never read.

use serde_json::Value;
use std::time::{Duration, SystemTime};

/// Times in a trace step's `metadata`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Timing {
    pub(super) start: Option<SystemTime>,
    pub(super) end: Option<SystemTime>,
    pub(super) total: Option<Duration>,
}

/// What an output closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Op {
    Model,
    Tool,
    Retrieval,
    Collaborator,
}

/// The parts of the agent's work the trace reports, reduced to what spans show.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum What {
    ModelInput {
        model: Option<String>,
    },
    ModelOutput {
        usage: Option<(u64, u64)>,
        timing: Timing,
    },
    Input {
        op: Op,
        name: String,
        id: Option<String>,
        extra: Option<(&'static str, String)>,
    },
    Output {
        op: Op,
        timing: Timing,
    },
    Final {
        timing: Timing,
    },
    Guardrail {
        action: String,
        timing: Timing,
    },
    Failure {
        code: Option<i64>,
        timing: Timing,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Part {
    pub(super) at: SystemTime,
    /// The collaborator whose trace this is (`None`: the agent called).
    pub(super) agent: Option<String>,
    pub(super) step: &'static str,
    pub(super) trace_id: Option<String>,
    pub(super) what: What,
}

const STEPS: [(&str, &str); 7] = [
    ("preProcessingTrace", "pre_processing"),
    ("orchestrationTrace", "orchestration"),
    ("postProcessingTrace", "post_processing"),
    ("routingClassifierTrace", "routing_classifier"),
    ("customOrchestrationTrace", "custom_orchestration"),
    ("guardrailTrace", "guardrail"),
    ("failureTrace", "failure"),
];

fn time(v: &Value) -> Option<SystemTime> {
    let s = v.as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(SystemTime::from(t.with_timezone(&chrono::Utc)))
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn timing(metadata: &Value) -> Timing {
    Timing {
        start: time(&metadata["startTime"]),
        end: time(&metadata["endTime"]),
        total: metadata["totalTimeMs"].as_u64().map(Duration::from_millis),
    }
}

fn usage(metadata: &Value) -> Option<(u64, u64)> {
    let u = metadata.get("usage")?;
    Some((
        u["inputTokens"].as_u64().unwrap_or(0),
        u["outputTokens"].as_u64().unwrap_or(0),
    ))
}

/// The input part of an invocation (`invocationInput`).
fn input(v: &Value) -> Option<What> {
    if let Some(a) = v.get("actionGroupInvocationInput") {
        let group = text(&a["actionGroupName"]).unwrap_or_else(|| "action_group".into());
        let name = text(&a["function"])
            .or_else(|| text(&a["apiPath"]))
            .unwrap_or_else(|| group.clone());
        return Some(What::Input {
            op: Op::Tool,
            name,
            id: text(&a["invocationId"]),
            extra: Some(("aws.bedrock.agent.action_group", group)),
        });
    }
    if let Some(k) = v.get("knowledgeBaseLookupInput") {
        return Some(What::Input {
            op: Op::Retrieval,
            name: text(&k["knowledgeBaseId"]).unwrap_or_default(),
            id: None,
            extra: None,
        });
    }
    if let Some(c) = v.get("agentCollaboratorInvocationInput") {
        return Some(What::Input {
            op: Op::Collaborator,
            name: text(&c["agentCollaboratorName"]).unwrap_or_else(|| "collaborator".into()),
            id: text(&c["agentCollaboratorAliasArn"]),
            extra: None,
        });
    }
    if v.get("codeInterpreterInvocationInput").is_some() {
        return Some(What::Input {
            op: Op::Tool,
            name: "code_interpreter".into(),
            id: None,
            extra: None,
        });
    }
    None
}

/// The output part of an invocation (`observation`).
fn observation(v: &Value) -> Option<What> {
    let outputs = [
        ("actionGroupInvocationOutput", Op::Tool),
        ("codeInterpreterInvocationOutput", Op::Tool),
        ("knowledgeBaseLookupOutput", Op::Retrieval),
        ("agentCollaboratorInvocationOutput", Op::Collaborator),
    ];
    for (key, op) in outputs {
        if let Some(o) = v.get(key) {
            return Some(What::Output {
                op,
                timing: timing(&o["metadata"]),
            });
        }
    }
    v.get("finalResponse").map(|f| What::Final {
        timing: timing(&f["metadata"]),
    })
}

/// What one step member says (a step holds one member per part).
fn what(step: &str, body: &Value) -> Option<What> {
    match step {
        "guardrailTrace" => {
            return Some(What::Guardrail {
                action: text(&body["action"]).unwrap_or_else(|| "NONE".into()),
                timing: timing(&body["metadata"]),
            });
        }
        "failureTrace" => {
            return Some(What::Failure {
                code: body["failureCode"].as_i64(),
                timing: timing(&body["metadata"]),
            });
        }
        _ => {}
    }
    if let Some(i) = body.get("modelInvocationInput") {
        return Some(What::ModelInput {
            model: text(&i["foundationModel"]),
        });
    }
    if let Some(o) = body.get("modelInvocationOutput") {
        return Some(What::ModelOutput {
            usage: usage(&o["metadata"]),
            timing: timing(&o["metadata"]),
        });
    }
    if let Some(i) = body.get("invocationInput") {
        return input(i);
    }
    if let Some(o) = body.get("observation") {
        return observation(o);
    }
    None
}

fn trace_id(step: &str, body: &Value) -> Option<String> {
    if matches!(step, "guardrailTrace" | "failureTrace") {
        return text(&body["traceId"]);
    }
    body.as_object()?
        .values()
        .find_map(|member| text(&member["traceId"]))
}

/// One trace part, received at `received` (used where it has no `eventTime`); `None` for
/// parts of other shapes (an AgentCore agent's tool events) and parts spans do not show.
pub(super) fn read(part: &Value, received: SystemTime) -> Option<Part> {
    let trace = part.get("trace")?;
    let (key, step, body) = STEPS
        .iter()
        .find_map(|(key, name)| trace.get(*key).map(|b| (*key, *name, b)))?;
    let what = what(key, body)?;
    // A collaborator's parts name it and carry a caller chain longer than one.
    let nested = part["callerChain"].as_array().is_some_and(|c| c.len() > 1);
    let agent = if nested {
        text(&part["collaboratorName"]).or_else(|| text(&part["agentId"]))
    } else {
        None
    };
    Some(Part {
        at: time(&part["eventTime"]).unwrap_or(received),
        agent,
        step,
        trace_id: trace_id(key, body),
        what,
    })
}
