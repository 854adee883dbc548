//! Where spans go: the OTLP exporter (HTTP/protobuf, HTTP/JSON or gRPC, as the standard
//! `OTEL_EXPORTER_OTLP_*` variables say) behind the SDK's batch processor.
//!
//! OTLP/HTTP goes through [`OtlpHttp`], hyper's client over rustls with ring (the crypto
//! provider the rest of the gateway uses), run on the runtime that built it: the batch
//! processor exports from its own thread, where no Tokio runtime is current. OTLP/gRPC is
//! tonic's channel (TLS by rustls with ring), which the exporter builds on that same runtime.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use std::sync::Arc;
use std::time::Duration;

/// The OTLP collector's answer is read up to this size.
const MAX_RESPONSE: usize = 1 << 20;
/// One export's deadline (the exporter's own timeout applies too).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

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
pub fn exporter(protocol: Protocol) -> Result<opentelemetry_otlp::SpanExporter, String> {
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
    built.map_err(|e| format!("OTLP exporter: {e}"))
}
