//! # agentbridge-proxy
//!
//! An OpenAI-compatible HTTP server in front of Bedrock Agents that reads LiteLLM's config
//! format. It owns config loading, auth, routes, SSE and the accept loop; every agent call
//! goes through the `agentbridge` SDK.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use agentbridge_proxy::{config, state::Gateway, app};
//! let cfg = config::load("config.yaml".as_ref(), config::LoadOptions::default())?;
//! let gateway = std::sync::Arc::new(Gateway::new(cfg).await?);
//! let router = app(gateway)?; // one per worker thread: each has its own upstream client
//! # let _ = router; Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod doors;
pub mod error;
pub mod keys;
pub mod observe;
pub mod router;
pub mod routes;
pub mod server;
pub mod sse;
pub mod state;
pub mod ui;

use axum::Router;
use axum::routing::{get, post};
use state::{AppState, Gateway};
use std::sync::Arc;

/// The whole HTTP API as one router with its own upstream client (tests drive it with
/// `tower::ServiceExt::oneshot`).
pub fn app(gateway: Arc<Gateway>) -> agentbridge::Result<Router> {
    Ok(Handler::new(gateway)?.router)
}

/// One worker's request handler: the doors' routes straight to their handlers (no routing,
/// middleware or extractor layers on the busiest path), everything else through the router.
/// Both share one upstream client.
#[derive(Clone)]
pub struct Handler {
    state: AppState,
    router: Router,
}

impl Handler {
    /// A handler with its own upstream client.
    pub fn new(gateway: Arc<Gateway>) -> agentbridge::Result<Self> {
        let state = AppState {
            client: gateway.new_client()?,
            gw: gateway,
        };
        Ok(Self {
            router: router(state.clone()),
            state,
        })
    }
}

impl Handler {
    /// Answers one request. Takes `&self`, so a connection's service calls it without
    /// cloning the handler per request (hyper's adapter for tower services clones).
    pub fn handle<B>(
        &self,
        req: http::Request<B>,
    ) -> futures::future::BoxFuture<'static, axum::response::Response>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let path = req.uri().path();
        if req.method() == http::Method::POST
            && (path == "/v1/chat/completions" || path == "/chat/completions")
        {
            let state = self.state.clone();
            return Box::pin(async move {
                let (parts, body) = req.into_parts();
                doors::serve::<doors::chat::Chat>(state, parts.headers, axum::body::Body::new(body))
                    .await
            });
        }
        if req.method() == http::Method::POST && (path == "/v1/responses" || path == "/responses") {
            let state = self.state.clone();
            return Box::pin(async move {
                let (parts, body) = req.into_parts();
                doors::serve::<doors::responses::Responses>(
                    state,
                    parts.headers,
                    axum::body::Body::new(body),
                )
                .await
            });
        }
        if req.method() == http::Method::POST && path == "/v1/messages" {
            let state = self.state.clone();
            return Box::pin(async move {
                let (parts, body) = req.into_parts();
                doors::serve::<doors::messages::Messages>(
                    state,
                    parts.headers,
                    axum::body::Body::new(body),
                )
                .await
            });
        }
        let call = tower::ServiceExt::oneshot(self.router.clone(), req);
        Box::pin(async move {
            match call.await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        })
    }
}

fn router(state: AppState) -> Router {
    let gateway = Arc::clone(&state.gw);
    // Key administration talks to the database: run it on the runtime that owns the pool.
    let admin = Router::new()
        .route("/key/generate", post(keys::admin::generate))
        .route("/key/info", get(keys::admin::info))
        .route("/key/update", post(keys::admin::update))
        .route("/key/delete", post(keys::admin::delete))
        .route("/key/list", get(keys::admin::list))
        .route("/spend/logs", get(keys::admin::logs))
        .route("/spend/summary", get(keys::admin::summary))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            routes::at_home,
        ));
    let api = Router::new()
        .route("/v1/chat/completions", post(routes::chat))
        .route("/chat/completions", post(routes::chat))
        .route("/v1/responses", post(routes::responses))
        .route("/responses", post(routes::responses))
        .route("/v1/responses/{id}", get(doors::responses::retrieve))
        .route("/responses/{id}", get(doors::responses::retrieve))
        .route("/v1/models", get(routes::models))
        .route("/models", get(routes::models))
        .route("/health", get(routes::health))
        .merge(admin)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            routes::require_key,
        ));
    // The admin UI (with a master key only): its own sign-in, sessions and form tokens.
    let ui = ui::router(&gateway).unwrap_or_default();
    // The Messages door answers auth failures in its own error shape, so it authenticates
    // in its handler rather than behind the shared middleware.
    Router::new()
        .merge(api)
        .merge(ui)
        .route("/v1/messages", post(routes::messages))
        .route("/health/liveliness", get(routes::liveliness))
        .route("/health/liveness", get(routes::liveliness))
        .route("/health/readiness", get(routes::readiness))
        .route("/metrics", get(observe::serve_metrics))
        .route("/metrics/", get(observe::serve_metrics))
        .fallback(routes::fallback)
        .with_state(state)
}
