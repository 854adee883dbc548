//! Where spans go: the OTLP exporter (HTTP/protobuf, HTTP/JSON or gRPC, as the standard
//! `OTEL_EXPORTER_OTLP_*` variables say) behind the SDK's batch processor.
//!
//! OTLP/HTTP goes through [`OtlpHttp`], hyper's client over rustls with ring (the crypto
//! provider the rest of the gateway uses), run on the runtime that built it: the batch
//! processor exports from its own thread, where no Tokio runtime is current. OTLP/gRPC is
//! tonic's channel (TLS by rustls with ring), which the exporter builds on that same runtime.
//!
//! Failed exports are logged by [`Reported`]: the SDK reports them only through its own
//! internal logs (its `internal-logs` feature, off here), so a wrong endpoint or a collector
//! that is down would otherwise drop every span without a word.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The OTLP collector's answer is read up to this size.
const MAX_RESPONSE: usize = 1 << 20;
/// One export's deadline (the exporter's own timeout applies too).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// While exports keep failing, they are logged at most this often (the first at once).
const REPORT_EVERY: Duration = Duration::from_secs(60);

type Http = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// OTLP/HTTP's client.
#[derive(Debug, Clone)]
pub struct OtlpHttp {
    http: Arc<Http>,
    runtime: tokio::runtime::Handle,
}

impl OtlpHttp {
    /// A client whose requests run on `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> Result<Self, String> {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(Duration::from_secs(5)));
        tcp.enforce_http(false);
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| format!("TLS set-up: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Self {
            http: Arc::new(http),
            runtime,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = Arc::clone(&self.http);
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let call = async move {
            let resp = tokio::time::timeout(EXPORT_TIMEOUT, http.request(request))
                .await
                .map_err(|_| "OTLP export timed out")??;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_RESPONSE).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        self.runtime.spawn(call).await?
    }
}

/// The protocol the variables name (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, then
/// `OTEL_EXPORTER_OTLP_PROTOCOL`; `http/protobuf` by default).
pub fn protocol(env: &dyn Fn(&str) -> Option<String>) -> Result<Protocol, String> {
    let name = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    match name.trim() {
        "http/protobuf" | "" => Ok(Protocol::HttpBinary),
        "http/json" => Ok(Protocol::HttpJson),
        "grpc" => Ok(Protocol::Grpc),
        other => Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={other:?}: expected http/protobuf, http/json or grpc"
        )),
    }
}

/// The span exporter for `protocol`; endpoint, headers, timeout and compression come from
/// the standard variables, read by the exporter. Call on the runtime exports should use.
pub fn exporter(protocol: Protocol) -> Result<Reported<opentelemetry_otlp::SpanExporter>, String> {
    let built = match protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_protocol(protocol)
            .build(),
        _ => {
            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|_| "OTLP/HTTP needs a Tokio runtime".to_string())?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(protocol)
                .with_http_client(OtlpHttp::new(runtime)?)
                .build()
        }
    };
    built
        .map(Reported::new)
        .map_err(|e| format!("OTLP exporter: {e}"))
}

/// An exporter whose failures are logged (target `agentbridge::otel`): the first failure at
/// once, then at most every [`REPORT_EVERY`] with the failures and spans lost since, and the
/// first success after failures with what was lost in all.
#[derive(Debug)]
pub struct Reported<E> {
    inner: E,
    failures: Mutex<Failures>,
}

impl<E> Reported<E> {
    /// `inner`, reported.
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            failures: Mutex::new(Failures::default()),
        }
    }
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        let report = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .after(
                result.as_ref().err().map(ToString::to_string),
                spans,
                Instant::now(),
            );
        match report {
            Some(Report::Failing {
                error,
                exports,
                spans,
            }) => tracing::warn!(
                target: "agentbridge::otel",
                %error, failed_exports = exports, spans_dropped = spans,
                "OpenTelemetry export failed: spans dropped (check OTEL_EXPORTER_OTLP_ENDPOINT and the collector)"
            ),
            Some(Report::Recovered { exports, spans }) => tracing::info!(
                target: "agentbridge::otel",
                failed_exports = exports, spans_dropped = spans,
                "OpenTelemetry export works again"
            ),
            None => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// What to log after an export.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Report {
    /// Failed exports (and their spans) since the last report, the latest error.
    Failing {
        error: String,
        exports: u64,
        spans: u64,
    },
    /// The first success after failures: failed exports and spans since the first failure.
    Recovered { exports: u64, spans: u64 },
}

/// The run of failed exports going on, if any.
#[derive(Debug, Default)]
struct Failures {
    /// Failed exports and their spans since the run began.
    exports: u64,
    spans: u64,
    /// The same, not yet reported, and when the last report was.
    unreported: (u64, u64),
    reported_at: Option<Instant>,
}

impl Failures {
    /// Counts an export's outcome (`error` if it failed, of `spans` spans) at `now`.
    fn after(&mut self, error: Option<String>, spans: u64, now: Instant) -> Option<Report> {
        let Some(error) = error else {
            if self.exports == 0 {
                return None;
            }
            let run = std::mem::take(self);
            return Some(Report::Recovered {
                exports: run.exports,
                spans: run.spans,
            });
        };
        self.exports += 1;
        self.spans += spans;
        self.unreported.0 += 1;
        self.unreported.1 += spans;
        if self
            .reported_at
            .is_some_and(|at| now.duration_since(at) < REPORT_EVERY)
        {
            return None;
        }
        self.reported_at = Some(now);
        let (exports, spans) = std::mem::take(&mut self.unreported);
        Some(Report::Failing {
            error,
            exports,
            spans,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_reported_at_once_then_at_most_a_minute_apart_and_recovery_once() {
        let mut f = Failures::default();
        let t = Instant::now();
        let fail = |s: &str| Some(s.to_string());
        assert_eq!(
            f.after(None, 3, t),
            None,
            "nothing to say while exports work"
        );
        assert_eq!(
            f.after(fail("connection refused"), 2, t),
            Some(Report::Failing {
                error: "connection refused".into(),
                exports: 1,
                spans: 2
            })
        );
        assert_eq!(
            f.after(fail("refused"), 5, t + Duration::from_secs(5)),
            None
        );
        assert_eq!(
            f.after(fail("refused"), 1, t + Duration::from_secs(59)),
            None
        );
        assert_eq!(
            f.after(fail("timed out"), 4, t + Duration::from_secs(61)),
            Some(Report::Failing {
                error: "timed out".into(),
                exports: 3,
                spans: 10
            })
        );
        assert_eq!(
            f.after(fail("timed out"), 1, t + Duration::from_secs(62)),
            None
        );
        assert_eq!(
            f.after(None, 7, t + Duration::from_secs(63)),
            Some(Report::Recovered {
                exports: 5,
                spans: 13
            })
        );
        assert_eq!(f.after(None, 7, t + Duration::from_secs(64)), None);
        // A new run is reported at once again.
        assert!(matches!(
            f.after(fail("refused"), 1, t + Duration::from_secs(65)),
            Some(Report::Failing {
                exports: 1,
                spans: 1,
                ..
            })
        ));
    }
}
