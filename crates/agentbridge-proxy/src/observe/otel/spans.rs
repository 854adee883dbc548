//! One request's spans: the HTTP server span, the `invoke_agent` client span, and the
//! agent's own trace under it.

use super::Otel;
use super::agent_trace::{AttrValue, Collector, Kind};
use agentbridge::canonical::{Answer, Finish, Outcome, Piece};
use futures::StreamExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SdkTracer, Span};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What the answer's pieces told, gathered as they pass to the door.
#[derive(Debug, Default)]
struct Seen {
    trace: Collector,
    finish: Option<Finish>,
}

/// The spans of one request, from arrival to [`RequestSpans::finish`].
#[derive(Debug)]
pub struct RequestSpans {
    tracer: SdkTracer,
    server: Span,
    server_cx: Context,
    agent: Option<(Span, Context)>,
    seen: Option<Arc<Mutex<Seen>>>,
}

fn context_of(span: &Span) -> Context {
    Context::new().with_remote_span_context(span.span_context().clone())
}

impl Otel {
    /// The server span of a request that arrived at `start` on `route`, continuing the
    /// client's `traceparent` / `tracestate` when it sent them.
    pub fn request(
        &self,
        route: &'static str,
        headers: &http::HeaderMap,
        start: SystemTime,
    ) -> RequestSpans {
        let parent = self
            .propagator
            .extract(&opentelemetry_http::HeaderExtractor(headers));
        let server = self
            .tracer
            .span_builder(format!("POST {route}"))
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("http.route", route),
                KeyValue::new("url.path", route),
                KeyValue::new("url.scheme", "http"),
            ])
            .start_with_context(&self.tracer, &parent);
        RequestSpans {
            tracer: self.tracer.clone(),
            server_cx: context_of(&server),
            server,
            agent: None,
            seen: None,
        }
    }
}

impl RequestSpans {
    /// The agent named `name` (the model name the client used) is being called now: opens
    /// the `invoke_agent {name}` span.
    pub fn calling(&mut self, name: &str) {
        let span = self
            .tracer
            .span_builder(format!("invoke_agent {name}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "invoke_agent"),
                KeyValue::new("gen_ai.provider.name", "aws.bedrock"),
                KeyValue::new("gen_ai.agent.name", name.to_string()),
            ])
            .start_with_context(&self.tracer, &self.server_cx);
        if span.is_recording() {
            self.seen = Some(Arc::default());
        }
        let cx = context_of(&span);
        self.agent = Some((span, cx));
    }

    /// The W3C `traceparent` of the `invoke_agent` span, for a target that forwards it.
    pub fn traceparent(&self) -> Option<String> {
        let (_, cx) = self.agent.as_ref()?;
        let mut headers = HashMap::new();
        opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .inject_context(cx, &mut headers);
        headers.remove("traceparent")
    }

    /// Whether the agent's own trace is recorded (the request is sampled).
    pub fn wants_agent_trace(&self) -> bool {
        self.seen.is_some()
    }

    /// The deployment that answers: the agent's id (the agent as the deployment's model
    /// string names it), its host, and the session.
    pub fn deployment(&mut self, agent_id: &str, host: &str, session: &str) {
        let Some((span, _)) = self.agent.as_mut() else {
            return;
        };
        span.set_attributes([
            KeyValue::new("gen_ai.agent.id", agent_id.to_string()),
            KeyValue::new("gen_ai.conversation.id", session.to_string()),
            KeyValue::new("server.address", host.to_string()),
        ]);
    }

    /// The answer, with its pieces watched: trace parts are read for spans (and passed on
    /// only when the client asked for them, `keep_traces`), the finish is noted.
    pub fn tap(&self, mut answer: Answer, keep_traces: bool) -> Answer {
        let Some(seen) = self.seen.clone() else {
            return answer;
        };
        let pieces = std::mem::replace(&mut answer.pieces, Box::pin(futures::stream::empty()));
        answer.pieces = Box::pin(pieces.filter_map(move |p| {
            let is_trace = matches!(p, Ok(Piece::Trace(_)));
            if let Ok(mut s) = seen.lock() {
                match &p {
                    Ok(Piece::Trace(v)) => s.trace.accept(v, SystemTime::now()),
                    Ok(Piece::End(e)) => s.finish = Some(e.finish),
                    _ => {}
                }
            }
            futures::future::ready((keep_traces || !is_trace).then_some(p))
        }));
        answer
    }

    /// Ends every span: the agent's trace steps, `invoke_agent` (usage, finish reason,
    /// error) and the server span (status).
    pub fn finish(mut self, status: u16, outcome: Option<Outcome>, error: Option<&str>) {
        let now = SystemTime::now();
        if let Some((mut span, cx)) = self.agent.take() {
            let seen = self
                .seen
                .take()
                .and_then(|s| s.lock().ok().map(|mut s| std::mem::take(&mut *s)));
            if let Some(seen) = seen {
                self.emit(&seen.trace, &cx);
                if let Some(f) = seen.finish {
                    span.set_attribute(KeyValue::new(
                        "gen_ai.response.finish_reasons",
                        Value::Array(Array::String(vec![StringValue::from(f.as_openai())])),
                    ));
                }
            }
            if let Some(o) = outcome {
                span.set_attributes([
                    KeyValue::new("gen_ai.usage.input_tokens", int(o.usage.prompt_tokens)),
                    KeyValue::new("gen_ai.usage.output_tokens", int(o.usage.completion_tokens)),
                ]);
            }
            if let Some(e) = error {
                span.set_attribute(KeyValue::new("error.type", e.to_string()));
                span.set_status(Status::error(e.to_string()));
            }
            span.end_with_timestamp(now);
        }
        self.server.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            self.server
                .set_attribute(KeyValue::new("error.type", status.to_string()));
            self.server.set_status(Status::error(String::new()));
        }
        self.server.end_with_timestamp(now);
    }

    /// The agent's trace steps as spans under `parent` (the `invoke_agent` span).
    fn emit(&self, trace: &Collector, parent: &Context) {
        let plan = trace.plan();
        let mut made: Vec<(Span, Context)> = Vec::with_capacity(plan.len());
        for p in &plan {
            let cx = match p.parent.and_then(|i| made.get(i)) {
                Some((_, cx)) => cx,
                None => parent,
            };
            let attrs: Vec<KeyValue> = p
                .attrs
                .iter()
                .map(|(k, v)| match v {
                    AttrValue::Str(s) => KeyValue::new(*k, s.clone()),
                    AttrValue::Int(n) => KeyValue::new(*k, *n),
                })
                .collect();
            let mut span = self
                .tracer
                .span_builder(p.name.clone())
                .with_kind(match p.kind {
                    Kind::Internal => SpanKind::Internal,
                    Kind::Client => SpanKind::Client,
                })
                .with_start_time(p.start)
                .with_attributes(attrs)
                .start_with_context(&self.tracer, cx);
            if let Some(e) = &p.error {
                span.set_attribute(KeyValue::new("error.type", e.clone()));
                span.set_status(Status::error(e.clone()));
            }
            let cx = context_of(&span);
            made.push((span, cx));
        }
        for ((mut span, _), p) in made.into_iter().zip(&plan) {
            span.end_with_timestamp(p.end);
        }
    }
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
