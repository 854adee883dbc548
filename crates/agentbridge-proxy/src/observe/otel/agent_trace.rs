//! The agent's own trace, as spans: Bedrock Agents' trace parts (pre-processing,
//! orchestration steps, model invocations, action groups, knowledge bases, collaborators,
//! guardrails, post-processing, failures) become a tree of [`Planned`] spans under the
//! `invoke_agent` span, with the times the trace carries.
//!
//! Pure: [`Collector::accept`] reads one trace part (a [`serde_json::Value`], as the answer's
//! `Piece::Trace` carries it) and keeps only names, ids, models, token counts and times,
//! never the prompt, the model's output, a rationale or a tool's arguments; [`Collector::plan`]
//! lays the spans out. Times: a step's `metadata.startTime`/`endTime` where the trace has
//! them, else `endTime - totalTimeMs`, else the trace parts' `eventTime`s (input part to output
//! part), else when the gateway received the part.

use super::trace_parts::{self, Op, Part, Timing, What};
use serde_json::Value;
use std::collections::HashMap;
use std::time::SystemTime;

/// At most this many spans per answer (an agent looping for long stays bounded).
pub const MAX_SPANS: usize = 512;

/// A span's kind (OpenTelemetry's `SpanKind`, the two used here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Work inside the agent (a step, a tool run by the agent).
    Internal,
    /// A call the agent made (a model, a knowledge base, a collaborator agent).
    Client,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
}

/// One span to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Span name (`chat anthropic.claude-...`, `execute_tool get_forecast`, ...).
    pub name: String,
    /// Span kind.
    pub kind: Kind,
    /// Index of the parent in the plan; `None`: the `invoke_agent` span.
    pub parent: Option<usize>,
    /// Start.
    pub start: SystemTime,
    /// End.
    pub end: SystemTime,
    /// Attributes (semantic-convention names).
    pub attrs: Vec<(&'static str, AttrValue)>,
    /// Set when the step failed: the error type.
    pub error: Option<String>,
}

impl Planned {
    /// The attribute `key`, if set.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Collects the agent's trace parts as they pass.
#[derive(Debug, Default)]
pub struct Collector {
    parts: Vec<Part>,
}

impl Collector {
    /// Reads one trace part received at `received` (used where the part has no
    /// `eventTime`). Parts of other shapes (an AgentCore agent's tool events) are ignored.
    pub fn accept(&mut self, part: &Value, received: SystemTime) {
        if self.parts.len() >= MAX_SPANS * 2 {
            return;
        }
        if let Some(p) = trace_parts::read(part, received) {
            self.parts.push(p);
        }
    }

    /// Whether any part was read.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The spans, parents before children.
    pub fn plan(&self) -> Vec<Planned> {
        Planner::default().run(&self.parts)
    }
}

fn span(name: String, kind: Kind, parent: Option<usize>, at: SystemTime) -> Planned {
    Planned {
        name,
        kind,
        parent,
        start: at,
        end: at,
        attrs: Vec::new(),
        error: None,
    }
}

fn str_attr(k: &'static str, v: impl Into<String>) -> (&'static str, AttrValue) {
    (k, AttrValue::Str(v.into()))
}

fn int_attr(k: &'static str, v: u64) -> (&'static str, AttrValue) {
    (k, AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX)))
}

/// The span's times from the output's metadata, else from its input's part to its own.
fn times(opened: SystemTime, at: SystemTime, t: Timing) -> (SystemTime, SystemTime) {
    let end = t
        .end
        .or_else(|| t.start.zip(t.total).map(|(s, d)| s + d))
        .unwrap_or(at);
    let start = t
        .start
        .or_else(|| t.total.and_then(|d| end.checked_sub(d)))
        .unwrap_or(opened);
    (start.min(end), end)
}

#[derive(Default)]
struct Planner {
    out: Vec<Planned>,
    /// Each collaborator's `invoke_agent` span.
    agents: HashMap<String, usize>,
    /// Each step's span, by (agent, step, trace id).
    steps: HashMap<(Option<String>, &'static str, Option<String>), usize>,
    /// Calls opened by an input part and not yet closed, by (step span, op).
    open: HashMap<(usize, Op), usize>,
}

impl Planner {
    fn push(&mut self, p: Planned) -> Option<usize> {
        if self.out.len() >= MAX_SPANS {
            return None;
        }
        self.out.push(p);
        Some(self.out.len() - 1)
    }

    /// The span of `agent` (`None`: the agent called, i.e. the `invoke_agent` span).
    fn agent(&mut self, agent: &Option<String>, at: SystemTime) -> Option<Option<usize>> {
        let Some(name) = agent else {
            return Some(None);
        };
        if let Some(i) = self.agents.get(name) {
            return Some(Some(*i));
        }
        let i = self.push(collaborator(name, None, None, at))?;
        self.agents.insert(name.clone(), i);
        Some(Some(i))
    }

    fn step(&mut self, p: &Part) -> Option<usize> {
        let key = (p.agent.clone(), p.step, p.trace_id.clone());
        if let Some(i) = self.steps.get(&key) {
            return Some(*i);
        }
        let parent = self.agent(&p.agent, p.at)?;
        let mut s = span(p.step.to_string(), Kind::Internal, parent, p.at);
        s.attrs.push(str_attr(
            "aws.bedrock.agent.trace.step",
            p.step.to_ascii_uppercase(),
        ));
        if let Some(id) = &p.trace_id {
            s.attrs
                .push(str_attr("aws.bedrock.agent.trace.id", id.clone()));
        }
        let i = self.push(s)?;
        self.steps.insert(key, i);
        Some(i)
    }

    fn run(mut self, parts: &[Part]) -> Vec<Planned> {
        for p in parts {
            if self.accept(p).is_none() {
                break;
            }
        }
        self.widen();
        self.out
    }

    fn accept(&mut self, p: &Part) -> Option<()> {
        match &p.what {
            What::Guardrail { action, timing } => {
                let parent = self.agent(&p.agent, p.at)?;
                let (start, end) = times(p.at, p.at, *timing);
                let mut s = span("guardrail".into(), Kind::Internal, parent, start);
                s.end = end;
                s.attrs
                    .push(str_attr("aws.bedrock.guardrail.action", action.clone()));
                self.push(s)?;
            }
            What::Failure { code, timing } => {
                let parent = self.agent(&p.agent, p.at)?;
                let (start, end) = times(p.at, p.at, *timing);
                let mut s = span("failure".into(), Kind::Internal, parent, start);
                s.end = end;
                s.error = Some(code.map_or_else(|| "failure".into(), |c| c.to_string()));
                self.push(s)?;
            }
            What::ModelInput { model } => {
                let step = self.step(p)?;
                let mut s = span(
                    model
                        .as_ref()
                        .map_or_else(|| "chat".into(), |m| format!("chat {m}")),
                    Kind::Client,
                    Some(step),
                    p.at,
                );
                s.attrs.push(str_attr("gen_ai.operation.name", "chat"));
                s.attrs
                    .push(str_attr("gen_ai.provider.name", "aws.bedrock"));
                if let Some(m) = model {
                    s.attrs.push(str_attr("gen_ai.request.model", m.clone()));
                }
                let i = self.push(s)?;
                self.open.insert((step, Op::Model), i);
            }
            What::ModelOutput { usage, timing } => {
                let step = self.step(p)?;
                let i = match self.open.remove(&(step, Op::Model)) {
                    Some(i) => i,
                    None => {
                        let mut s = span("chat".into(), Kind::Client, Some(step), p.at);
                        s.attrs.push(str_attr("gen_ai.operation.name", "chat"));
                        s.attrs
                            .push(str_attr("gen_ai.provider.name", "aws.bedrock"));
                        self.push(s)?
                    }
                };
                let s = &mut self.out[i];
                (s.start, s.end) = times(s.start, p.at, *timing);
                if let Some((input, output)) = usage {
                    s.attrs.push(int_attr("gen_ai.usage.input_tokens", *input));
                    s.attrs
                        .push(int_attr("gen_ai.usage.output_tokens", *output));
                }
            }
            What::Input {
                op,
                name,
                id,
                extra,
            } => {
                let step = self.step(p)?;
                let s = match op {
                    Op::Collaborator => collaborator(name, id.as_deref(), Some(step), p.at),
                    Op::Retrieval => {
                        let mut s =
                            span(format!("retrieval {name}"), Kind::Client, Some(step), p.at);
                        s.attrs.push(str_attr("gen_ai.operation.name", "retrieval"));
                        s.attrs
                            .push(str_attr("gen_ai.provider.name", "aws.bedrock"));
                        s.attrs
                            .push(str_attr("gen_ai.data_source.id", name.clone()));
                        s
                    }
                    Op::Tool | Op::Model => {
                        let mut s = span(
                            format!("execute_tool {name}"),
                            Kind::Internal,
                            Some(step),
                            p.at,
                        );
                        s.attrs
                            .push(str_attr("gen_ai.operation.name", "execute_tool"));
                        s.attrs.push(str_attr("gen_ai.tool.name", name.clone()));
                        s.attrs.push(str_attr("gen_ai.tool.type", "extension"));
                        if let Some(id) = id {
                            s.attrs.push(str_attr("gen_ai.tool.call.id", id.clone()));
                        }
                        s
                    }
                };
                let mut s = s;
                if let Some((k, v)) = extra {
                    s.attrs.push(str_attr(k, v.clone()));
                }
                let i = self.push(s)?;
                if *op == Op::Collaborator {
                    self.agents.insert(name.clone(), i);
                }
                self.open.insert((step, *op), i);
            }
            What::Output { op, timing } => {
                let step = self.step(p)?;
                if let Some(i) = self.open.remove(&(step, *op)) {
                    let s = &mut self.out[i];
                    (s.start, s.end) = times(s.start, p.at, *timing);
                }
            }
            What::Final { timing } => {
                let step = self.step(p)?;
                let s = &mut self.out[step];
                let (_, end) = times(s.start, p.at, *timing);
                s.end = s.end.max(end);
            }
        }
        let step_or_agent = self
            .steps
            .get(&(p.agent.clone(), p.step, p.trace_id.clone()));
        if let Some(&i) = step_or_agent {
            let s = &mut self.out[i];
            s.end = s.end.max(p.at);
        }
        Some(())
    }

    /// A parent spans its children (children come after their parents in the plan).
    fn widen(&mut self) {
        for i in (0..self.out.len()).rev() {
            if let Some(parent) = self.out[i].parent {
                let (start, end) = (self.out[i].start, self.out[i].end);
                let p = &mut self.out[parent];
                p.start = p.start.min(start);
                p.end = p.end.max(end);
            }
        }
    }
}

fn collaborator(name: &str, arn: Option<&str>, parent: Option<usize>, at: SystemTime) -> Planned {
    let mut s = span(format!("invoke_agent {name}"), Kind::Client, parent, at);
    s.attrs
        .push(str_attr("gen_ai.operation.name", "invoke_agent"));
    s.attrs
        .push(str_attr("gen_ai.provider.name", "aws.bedrock"));
    s.attrs.push(str_attr("gen_ai.agent.name", name));
    if let Some(arn) = arn {
        s.attrs.push(str_attr("gen_ai.agent.id", arn));
    }
    s
}

#[cfg(test)]
#[path = "agent_trace_tests.rs"]
mod tests;
