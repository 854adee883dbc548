//! What the gateway tells operators about each request: Prometheus metrics under LiteLLM's
//! names ([`metrics`]), one access line per request ([`access_log`]), OpenTelemetry traces
//! ([`otel`]).
//!
//! The shared request path ([`crate::doors`]) opens a [`Tracker`] when a request arrives,
//! fills it in as the request goes (model, key, deployment, first piece) and finishes it once
//! (response sent, stream ended or dropped, or error). Finishing builds one
//! [`RequestRecord`] and hands it to every observer that is on. With every observer off a
//! tracker is a few plain fields and an `Instant`: nothing is locked or allocated for it.

pub mod access_log;
pub mod metrics;
pub mod otel;

use crate::keys::record::KeyRecord;
use agentbridge::canonical::Outcome;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Which observers are on (from `litellm_settings`, `general_settings` and `agentbridge:`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObserveSettings {
    /// Serve `GET /metrics` (LiteLLM: `callbacks: ["prometheus"]`; agentbridge: `metrics: true`).
    pub metrics: bool,
    /// `/metrics` needs a key (LiteLLM's `general_settings.require_auth_for_metrics_endpoint`).
    pub metrics_require_auth: bool,
    /// One JSON object per log line (LiteLLM's `json_logs: true`; agentbridge: `json_logs: true`).
    pub json_logs: bool,
    /// Export traces even without `OTEL_EXPORTER_OTLP_ENDPOINT` (LiteLLM: `callbacks: ["otel"]`).
    pub otel: bool,
}

/// Everything known about one finished request: what metrics count, what the access line
/// says, what an admin UI stores. Never a prompt, an answer or a raw key.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestRecord {
    /// When the request arrived, Unix seconds (fractional).
    pub time: f64,
    /// The gateway's request id (`x-request-id`); empty when refused before one was made.
    pub request_id: String,
    /// The door (`chat`, ...).
    pub door: &'static str,
    /// The route LiteLLM would report (`/chat/completions`, ...).
    pub route: &'static str,
    /// The model name the client asked for, when it is one the gateway serves.
    pub requested_model: Option<String>,
    /// The deployment that answered (`{model_name}/{index}`).
    pub deployment_id: Option<String>,
    /// The deployment's `litellm_params.model` (`bedrock/agent/ID/ALIAS`).
    pub litellm_model: Option<String>,
    /// The provider (`bedrock`).
    pub provider: Option<&'static str>,
    /// The virtual key's alias.
    pub key_alias: Option<String>,
    /// The virtual key's SHA-256 (LiteLLM's `hashed_api_key`).
    pub hashed_key: Option<String>,
    /// HTTP status sent (200 for a stream that started, even if it failed later).
    pub status: u16,
    /// Arrival to response end (for a stream: to its last byte), seconds.
    pub latency: f64,
    /// Time spent waiting on the agent (call start to answer end), seconds.
    pub api_latency: Option<f64>,
    /// Arrival to the first piece of a streamed answer, seconds.
    pub time_to_first_token: Option<f64>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// USD.
    pub cost: f64,
    /// The agent session (logs only: never a metric label).
    pub session: Option<String>,
    /// Streamed.
    pub stream: bool,
    /// The error's class (`rate_limit_exceeded`, `upstream_error`, ...), if any.
    pub error_class: Option<String>,
    /// The key's spend after this request, when known (for the budget gauges).
    #[serde(skip)]
    pub key_spend: Option<f64>,
    /// The key's budget.
    #[serde(skip)]
    pub key_max_budget: Option<f64>,
    /// What the key may still use this minute, this request's tokens taken off.
    #[serde(skip)]
    pub key_headroom: crate::keys::Headroom,
}

/// Takes finished records besides metrics and the access log: the key store's request log,
/// which the admin UI reads. Called on the request path: must not block. It gets the record
/// itself, after the other observers, so it keeps the record's strings without copying them.
pub trait RecordSink: std::fmt::Debug + Send + Sync {
    /// Takes one finished request's record.
    fn record(&self, rec: RequestRecord);
}

/// The observers of a gateway.
#[derive(Debug, Default)]
pub struct Observe {
    /// On when `/metrics` is served.
    pub metrics: Option<metrics::Metrics>,
    /// On when traces are exported (see [`otel`]).
    pub otel: Option<otel::Otel>,
    /// The request log, when there is a key store.
    pub sink: Option<Arc<dyn RecordSink>>,
    /// The settings they came from.
    pub settings: ObserveSettings,
}

impl Observe {
    /// The observers `settings` (and, for traces, the `OTEL_*` variables) turn on. Call on
    /// the runtime that should run the trace exporter's I/O.
    pub fn new(settings: ObserveSettings) -> Self {
        let otel = match otel::Otel::from_env(settings.otel) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("OpenTelemetry traces are off: {e}");
                None
            }
        };
        Self {
            metrics: settings.metrics.then(metrics::Metrics::new),
            otel,
            sink: None,
            settings,
        }
    }

    /// Exports the traces still buffered (blocks; call from `spawn_blocking` at shutdown).
    pub fn shutdown(&self) {
        if let Some(o) = &self.otel {
            o.shutdown();
        }
    }

    /// These observers, and `sink` for every finished record.
    pub fn with_sink(mut self, sink: Option<Arc<dyn RecordSink>>) -> Self {
        self.sink = sink;
        self
    }

    /// A tracker for a request that just arrived on `door`.
    pub fn start(self: &Arc<Self>, door: &'static str) -> Tracker {
        if let Some(m) = &self.metrics {
            m.in_flight.inc();
        }
        Tracker {
            observe: Arc::clone(self),
            started: Instant::now(),
            wall: SystemTime::now(),
            door,
            request_id: String::new(),
            requested_model: None,
            deployment_id: None,
            litellm_model: None,
            provider: None,
            key: None,
            headroom: crate::keys::Headroom::default(),
            called: None,
            first_piece: None,
            session: None,
            stream: false,
            done: false,
            spans: None,
        }
    }
}

/// One request being observed. Finished exactly once (dropping an unfinished tracker
/// finishes it as a cancelled request, status 499 as nginx and LiteLLM's logs call it).
#[derive(Debug)]
pub struct Tracker {
    observe: Arc<Observe>,
    started: Instant,
    wall: SystemTime,
    door: &'static str,
    /// The request id, once made.
    pub request_id: String,
    /// The served model name the client asked for.
    pub requested_model: Option<String>,
    /// The deployment that answers.
    pub deployment_id: Option<String>,
    /// Its `litellm_params.model`.
    pub litellm_model: Option<String>,
    /// Its provider.
    pub provider: Option<&'static str>,
    /// The caller's virtual key.
    pub key: Option<Arc<KeyRecord>>,
    /// What the key may still use this minute (set when it was admitted).
    pub headroom: crate::keys::Headroom,
    called: Option<Instant>,
    first_piece: Option<Instant>,
    /// The agent session.
    pub session: Option<String>,
    /// Streamed.
    pub stream: bool,
    done: bool,
    spans: Option<Box<otel::RequestSpans>>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// LiteLLM's route for a door.
fn route_of(door: &'static str) -> &'static str {
    match door {
        "chat" => "/chat/completions",
        "responses" => "/responses",
        "messages" => "/v1/messages",
        other => other,
    }
}

impl Tracker {
    /// Opens the request's server span when traces are on, continuing the client's W3C
    /// trace context from `headers`.
    pub fn trace(&mut self, headers: &http::HeaderMap) {
        if let Some(o) = &self.observe.otel {
            let spans = o.request(route_of(self.door), headers, self.wall);
            self.spans = Some(Box::new(spans));
        }
    }

    /// The agent is being called now.
    pub fn calling(&mut self) {
        self.called = Some(Instant::now());
        if let Some(s) = self.spans.as_mut() {
            s.calling(self.requested_model.as_deref().unwrap_or("agent"));
        }
    }

    /// The `traceparent` of the agent call's span, when traces are on.
    pub fn agent_traceparent(&self) -> Option<String> {
        self.spans.as_ref()?.traceparent()
    }

    /// Whether the agent's own trace steps are wanted (traces on, request sampled).
    pub fn wants_agent_trace(&self) -> bool {
        self.spans.as_ref().is_some_and(|s| s.wants_agent_trace())
    }

    /// The answer, watched for the agent's trace steps when they are wanted; trace pieces
    /// reach the door only if the client asked for them (`keep_traces`).
    pub fn tap(
        &self,
        answer: agentbridge::canonical::Answer,
        keep_traces: bool,
    ) -> agentbridge::canonical::Answer {
        match &self.spans {
            Some(s) => s.tap(answer, keep_traces),
            None => answer,
        }
    }

    /// Deployment `d` (id `id`) answers, on agent session `session`.
    pub fn deployment(&mut self, d: &agentbridge::Deployment, id: &str, session: &str) {
        let model = d.settings.target.model();
        if let Some(s) = self.spans.as_mut() {
            let rest = model.strip_prefix("bedrock/").unwrap_or(&model);
            let agent_id = agentbridge::target::kind_for(&model)
                .and_then(|k| rest.strip_prefix(k.prefix))
                .unwrap_or(rest);
            s.deployment(agent_id, &d.host, session);
        }
        self.litellm_model = Some(model);
        self.provider = Some(d.settings.target.provider());
        self.deployment_id = Some(id.to_string());
        self.session = Some(session.to_string());
    }

    /// The first piece of a streamed answer arrived now.
    pub fn first_piece(&mut self) {
        self.first_piece.get_or_insert_with(Instant::now);
    }

    /// Finishes with a response: `status`, the answer's `outcome` if it got that far, the
    /// key's spend after charging if known, and the error class if it failed.
    pub fn finish(
        mut self,
        status: u16,
        outcome: Option<Outcome>,
        key_spend: Option<f64>,
        error_class: Option<String>,
    ) {
        self.finish_mut(status, outcome, key_spend, error_class);
    }

    fn finish_mut(
        &mut self,
        status: u16,
        outcome: Option<Outcome>,
        key_spend: Option<f64>,
        error_class: Option<String>,
    ) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let obs = Arc::clone(&self.observe);
        if let Some(m) = &obs.metrics {
            m.in_flight.dec();
        }
        if let Some(s) = self.spans.take() {
            s.finish(status, outcome, error_class.as_deref());
        }
        if obs.metrics.is_none() && !access_log::enabled() && obs.sink.is_none() {
            return;
        }
        let now = Instant::now();
        let usage = outcome.map(|o| o.usage).unwrap_or_default();
        let rec = RequestRecord {
            time: self
                .wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(secs)
                .unwrap_or(0.0),
            request_id: std::mem::take(&mut self.request_id),
            door: self.door,
            route: route_of(self.door),
            requested_model: self.requested_model.take(),
            deployment_id: self.deployment_id.take(),
            litellm_model: self.litellm_model.take(),
            provider: self.provider,
            key_alias: self.key.as_ref().and_then(|k| k.key_alias.clone()),
            hashed_key: self.key.as_ref().map(|k| k.token.clone()),
            status,
            latency: secs(now - self.started),
            api_latency: self.called.map(|c| secs(now - c)),
            time_to_first_token: self.first_piece.map(|f| secs(f - self.started)),
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            cost: outcome.map(|o| o.cost).unwrap_or(0.0),
            session: self.session.take(),
            stream: self.stream,
            error_class,
            key_spend,
            key_max_budget: self.key.as_ref().and_then(|k| k.max_budget),
            key_headroom: crate::keys::Headroom {
                requests: self.headroom.requests,
                tokens: self
                    .headroom
                    .tokens
                    .map(|t| t - i64::try_from(usage.total_tokens).unwrap_or(i64::MAX)),
            },
        };
        if let Some(m) = &obs.metrics {
            m.record(&rec);
        }
        access_log::write(&rec);
        if let Some(sink) = &obs.sink {
            sink.record(rec);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.finish_mut(499, None, None, Some("cancelled".into()));
    }
}

/// A new request id: a UUID whose first 48 bits are the time in ms (version 7) and whose
/// other 74 are random. Ids made later sort later, so the spend log's primary key (the id)
/// and the request log's grow at one end: with random (version 4) ids every spend log landed
/// on a random page of a growing index, and SQLite's writer spent 23 us a virtual-key request
/// writing and re-reading pages where it now spends 6 (docs/benchmarks.md). The same holds
/// for PostgreSQL's B-trees.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An error's class for metrics and logs: its OpenAI `code` (a fixed set, or the AWS error
/// type for upstream errors), else its `type`.
pub fn error_class(e: &crate::error::ProxyError) -> String {
    let body = e.body();
    let err = &body["error"];
    err["code"]
        .as_str()
        .or_else(|| err["type"].as_str())
        .unwrap_or("error")
        .to_string()
}

/// `GET /metrics` and `/metrics/`: the text exposition when metrics are on (404 otherwise);
/// behind a key when `require_auth_for_metrics_endpoint` is set.
pub async fn serve_metrics(
    axum::extract::State(gw): axum::extract::State<Arc<crate::state::Gateway>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(m) = &gw.observe.metrics else {
        return crate::error::ProxyError::NotFound(
            "metrics are off: set litellm_settings.callbacks: [\"prometheus\"]".into(),
        )
        .into_response();
    };
    if gw.observe.settings.metrics_require_auth
        && let Err(e) = crate::routes::identify(&gw, &headers).await
    {
        return e.into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    /// Request ids made one after another sort in the order they were made,
    /// so the logs keyed by them grow at one end, and no two are the same.
    #[test]
    fn request_ids_sort_in_the_order_they_are_made() {
        let ids: Vec<String> = (0..2000).map(|_| super::new_request_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
    }
}
