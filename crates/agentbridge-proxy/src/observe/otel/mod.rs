//! OpenTelemetry traces, exported over OTLP, per the GenAI semantic conventions (v1.41).
//!
//! On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or
//! when the config names LiteLLM's `otel` callback (then the exporter's default endpoint);
//! off with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Sampling is the SDK's
//! reading of `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default: parent-based,
//! always on); the service is `OTEL_SERVICE_NAME` (default `agentbridge`).
//!
//! Per request ([`RequestSpans`]): the HTTP server span (continuing the client's W3C
//! `traceparent`), under it the `invoke_agent {model}` client span, and under that the
//! agent's own trace ([`agent_trace`]). Prompts and answers are never recorded.
//!
//! With tracing off nothing here exists: [`crate::observe::Observe::otel`] is `None` and a
//! request builds no span. With a request not sampled, its spans are the SDK's
//! non-recording ones and the agent's trace is not asked for.

pub mod agent_trace;
mod export;
mod spans;
mod trace_parts;

pub use spans::RequestSpans;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The tracer of a gateway that exports traces.
#[derive(Debug)]
pub struct Otel {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

/// Whether the variables (and the config's `otel` callback) turn tracing on.
pub fn enabled(config_asks: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled
        && (config_asks
            || set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

impl Otel {
    /// The tracer the environment describes, if tracing is on. Call on the runtime that
    /// should run the exporter's I/O (the gateway's main runtime).
    pub fn from_env(config_asks: bool) -> Result<Option<Self>, String> {
        let env = |k: &str| std::env::var(k).ok();
        if !enabled(config_asks, &env) {
            return Ok(None);
        }
        let exporter = export::exporter(export::protocol(&env)?)?;
        let service = env("OTEL_SERVICE_NAME")
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "agentbridge".into());
        let resource = Resource::builder().with_service_name(service).build();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("agentbridge");
        Ok(Some(Self {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        }))
    }

    /// Exports what is buffered and stops the exporter (blocks: call off the runtime's
    /// worker threads, e.g. in `spawn_blocking`).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry exporter shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_otlp::Protocol;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn an_endpoint_or_the_otel_callback_turns_traces_on_and_the_sdk_switches_turn_them_off() {
        assert!(!enabled(false, &env(&[])));
        assert!(!enabled(
            false,
            &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])
        ));
        assert!(enabled(
            false,
            &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
        ));
        assert!(enabled(
            false,
            &env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/v1/traces")])
        ));
        assert!(enabled(true, &env(&[])));
        assert!(!enabled(true, &env(&[("OTEL_SDK_DISABLED", "TRUE")])));
        assert!(!enabled(true, &env(&[("OTEL_TRACES_EXPORTER", "none")])));
    }

    #[test]
    fn protocol_is_http_protobuf_unless_the_variables_say_otherwise() {
        assert_eq!(export::protocol(&env(&[])), Ok(Protocol::HttpBinary));
        let grpc = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")];
        assert_eq!(export::protocol(&env(&grpc)), Ok(Protocol::Grpc));
        let both = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ];
        assert_eq!(export::protocol(&env(&both)), Ok(Protocol::HttpJson));
        let bad = [("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")];
        assert!(export::protocol(&env(&bad)).is_err_and(|e| e.contains("thrift")));
    }
}
