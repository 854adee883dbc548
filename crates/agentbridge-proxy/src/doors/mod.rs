//! The doors: each API format the gateway serves, over one shared request path.
//!
//! A [`Door`] parses its format into the canonical [`AgentRequest`] and renders the answer's
//! pieces as its JSON ([`Door::complete`]) or its stream ([`Door::encoder`]), and shapes its
//! own errors ([`Door::error_response`]). Everything else is [`serve`], the same for every
//! door: authentication, the concurrency limit, the body limit, the key's checks, the call
//! through the gateway's router, response headers, and charging the key once the answer is
//! complete. A door never knows which target answered.
//!
//! Adding a door is a module here and a route in [`crate::Handler`] / [`crate::app`].

pub mod chat;
pub mod common;
pub mod messages;
pub mod responses;

use crate::error::{ProxyError, Result};
use crate::keys::Caller;
use crate::observe::{self, Tracker};
use crate::sse::{self, OutcomeHandle, SseEncoder};
use crate::state::AppState;
use agentbridge::canonical::{AgentRequest, Answer, Outcome, Piece};
use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// What a door's parse yields.
#[derive(Debug)]
pub struct Parsed<C> {
    /// The model name the client asked for (a `model_name` of the config).
    pub model: String,
    /// The canonical request.
    pub request: AgentRequest,
    /// What the door keeps for its response (ids, echoed fields).
    pub ctx: C,
}

/// The fixed facts of one answer, for the door's rendering.
#[derive(Debug, Clone)]
pub struct AnswerMeta {
    /// The gateway's request id (`x-request-id`).
    pub request_id: String,
    /// The model name the client used.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// The deployment that answered (`{model_name}/{index}`).
    pub deployment: String,
}

/// A non-streamed answer, rendered.
#[derive(Debug)]
pub struct Completed {
    /// The JSON body.
    pub body: Vec<u8>,
    /// Usage and cost, for spend and headers.
    pub outcome: Outcome,
}

impl Completed {
    /// `answer` written as JSON into a buffer of `capacity` bytes, with its `outcome`.
    pub fn json<T: serde::Serialize>(
        answer: &T,
        capacity: usize,
        outcome: Outcome,
    ) -> agentbridge::Result<Self> {
        let mut body = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut body, answer).map_err(|e| {
            agentbridge::Error::Decode(format!("could not write the answer as JSON: {e}"))
        })?;
        Ok(Self { body, outcome })
    }
}

/// An API format.
pub trait Door: Send + Sync + 'static {
    /// The door's name in logs (`chat`, `responses`, `messages`).
    const NAME: &'static str;
    /// What the door keeps from parse to response.
    type Ctx: Send + 'static;
    /// The door's stream writer.
    type Encoder: SseEncoder;

    /// Parses the request body (headers for door-specific ones) into the canonical request.
    fn parse(body: &[u8], headers: &HeaderMap) -> Result<Parsed<Self::Ctx>>;

    /// Folds the whole answer into the door's JSON.
    fn complete(
        ctx: Self::Ctx,
        meta: AnswerMeta,
        request: &AgentRequest,
        answer: Answer,
    ) -> impl Future<Output = agentbridge::Result<Completed>> + Send;

    /// The writer for a streamed answer on `session_id`.
    fn encoder(
        ctx: Self::Ctx,
        meta: AnswerMeta,
        request: &AgentRequest,
        session_id: &str,
    ) -> Self::Encoder;

    /// The door's error response (status, headers and its error JSON).
    fn error_response(e: ProxyError) -> Response;
}

// Response header names, parsed at compile time rather than on every insert.
const RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");
const KEY_SPEND: HeaderName = HeaderName::from_static("x-litellm-key-spend");
const SESSION_ID: HeaderName = HeaderName::from_static("x-agentbridge-session-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const DEPLOYMENT: HeaderName = HeaderName::from_static("x-agentbridge-deployment");
const SESSION_NEW: HeaderName = HeaderName::from_static("x-agentbridge-session-new");
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

fn header(v: impl AsRef<str>) -> Option<HeaderValue> {
    HeaderValue::from_str(v.as_ref()).ok()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Serves one request through door `D`: authenticates, then answers (errors in `D`'s shape).
pub async fn serve<D: Door>(state: AppState, headers: HeaderMap, body: Body) -> Response {
    let mut tracker = Some(state.gw.observe.start(D::NAME));
    if let Some(t) = tracker.as_mut() {
        t.trace(&headers);
    }
    let caller = match crate::routes::identify(&state.gw, &headers).await {
        Ok(c) => c,
        Err(e) => return refuse::<D>(tracker, e),
    };
    let r = answer::<D>(state, caller, headers, body, &mut tracker).await;
    respond::<D>(tracker, r)
}

/// Like [`serve`], for a caller already identified (the router's middleware did it).
pub async fn serve_as<D: Door>(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut tracker = Some(state.gw.observe.start(D::NAME));
    if let Some(t) = tracker.as_mut() {
        t.trace(&headers);
    }
    let r = answer::<D>(state, caller, headers, body, &mut tracker).await;
    respond::<D>(tracker, r)
}

/// The response, with the tracker finished unless a stream took it along.
fn respond<D: Door>(tracker: Option<Tracker>, r: Result<Response>) -> Response {
    match r {
        Ok(r) => {
            if let Some(t) = tracker {
                t.finish(r.status().as_u16(), None, None, None);
            }
            r
        }
        Err(e) => refuse::<D>(tracker, e),
    }
}

fn refuse<D: Door>(tracker: Option<Tracker>, e: ProxyError) -> Response {
    if let Some(t) = tracker {
        t.finish(
            e.status().as_u16(),
            None,
            None,
            Some(observe::error_class(&e)),
        );
    }
    D::error_response(e)
}

async fn answer<D: Door>(
    AppState { gw, client }: AppState,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
    tracker: &mut Option<Tracker>,
) -> Result<Response> {
    let permit = Arc::clone(&gw.inflight)
        .try_acquire_owned()
        .map_err(|_| ProxyError::Overloaded(gw.server.max_concurrent_requests))?;
    if let (Some(t), Caller::Key(rec)) = (tracker.as_mut(), &caller) {
        t.key = Some(Arc::clone(rec));
    }
    let bytes = crate::routes::read_body(body, gw.server.max_body_bytes).await?;
    let Parsed {
        model,
        mut request,
        ctx,
    } = D::parse(&bytes, &headers)?;
    let pool = gw.pool(&model).ok_or_else(|| ProxyError::ModelNotFound {
        model: model.clone(),
        served: gw.model_names(),
    })?;
    if let Some(t) = tracker.as_mut() {
        t.requested_model = Some(model.clone());
        t.stream = request.options.stream;
    }
    request.context = crate::routes::call_context(&headers, pool);
    let key = match (&caller, &gw.keys) {
        (Caller::Key(rec), Some(keys)) => {
            let headroom = keys.admit(rec, &model).await?;
            if let Some(t) = tracker.as_mut() {
                t.headroom = headroom;
            }
            Some((Arc::clone(keys), Arc::clone(rec)))
        }
        _ => None,
    };
    let request_id = observe::new_request_id();
    let mut meta = AnswerMeta {
        request_id: request_id.clone(),
        model: model.clone(),
        created: now_secs(),
        deployment: String::new(),
    };
    let gw: &crate::state::Gateway = &gw;
    let span = tracing::info_span!("request", door = D::NAME, request_id = %request_id, model = %model, stream = request.options.stream, session = tracing::field::Empty);

    async move {
        // With traces on, the agent's call gets its own span: a target that forwards W3C
        // trace context sends that span's `traceparent`, and the agent's trace steps are
        // asked for (they become child spans; the door sees them only if the client asked).
        let client_wants_trace = request.options.include_trace;
        if let Some(t) = tracker.as_mut() {
            t.request_id.clone_from(&request_id);
            t.calling();
            if let Some(tp) = t.agent_traceparent() {
                request.context.traceparent = Some(tp);
            }
            request.options.include_trace |= t.wants_agent_trace();
        }
        let routed = gw.route(pool, &client, &mut request).await?;
        request.options.include_trace = client_wants_trace;
        let (mut answer, deployment, target) = (routed.answer, routed.deployment, routed.target);
        if let Some(t) = tracker.as_ref() {
            answer = t.tap(answer, client_wants_trace);
        }
        tracing::Span::current().record("session", answer.session_id.as_str());
        let session = answer.session_id.clone();
        meta.deployment = deployment.to_string();
        if let Some(t) = tracker.as_mut() {
            t.deployment(&target, &deployment, &session);
        }
        // The headers both kinds of answer carry, inserted straight into the response's map
        // (a map of their own extended into it cost more than the inserts).
        let common = [
            (SESSION_ID, header(&session)),
            (REQUEST_ID, header(&request_id)),
            (DEPLOYMENT, header(&deployment)),
            (
                SESSION_NEW,
                routed.session_new.then(|| HeaderValue::from_static("true")),
            ),
        ];
        let add_common = |h: &mut HeaderMap| {
            h.reserve(8);
            for (name, value) in common {
                if let Some(v) = value {
                    h.insert(name, v);
                }
            }
        };
        if !request.options.stream {
            let done = D::complete(ctx, meta, &request, answer).await?;
            let mut r = Response::new(Body::from(done.body));
            let h = r.headers_mut();
            add_common(h);
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(v) = header(done.outcome.cost.to_string()) {
                h.insert(RESPONSE_COST, v);
            }
            let mut spent = None;
            if let Some((keys, rec)) = &key {
                let spend = keys.charge(rec, &model, &request_id, done.outcome).await;
                spent = Some(spend);
                if let Some(v) = header(spend.to_string()) {
                    r.headers_mut().insert(KEY_SPEND, v);
                }
            }
            if let Some(t) = tracker.take() {
                t.finish(200, Some(done.outcome), spent, None);
            }
            drop(permit);
            return Ok(r);
        }
        let Answer {
            session_id,
            mut pieces,
        } = answer;
        // Wait for the first piece: an error before any output is still an HTTP error (and
        // still retryable by the client), not an in-band event.
        let first: Option<agentbridge::Result<Piece>> = pieces.next().await;
        let first = match first {
            Some(Err(e)) => return Err(e.into()),
            other => other,
        };
        if let Some(t) = tracker.as_mut() {
            t.first_piece();
        }
        let encoder = D::encoder(ctx, meta, &request, &session_id);
        let outcome = OutcomeHandle::default();
        let end = EndOfStream {
            keys: key,
            model,
            request_id,
            outcome: Arc::clone(&outcome),
            tracker: tracker.take(),
        };
        let stream = futures::stream::iter(first).chain(pieces);
        let body = sse::body(stream, encoder, outcome).map(move |b| {
            let _held = (&permit, &end);
            b
        });
        let mut r = Response::new(Body::from_stream(body));
        let h = r.headers_mut();
        add_common(h);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
        Ok(r)
    }
    .instrument(span)
    .await
}

/// When a streamed answer's body is dropped (finished, failed or cancelled): charges the key
/// with the usage the agent reported up to then, and finishes the request's tracker.
struct EndOfStream {
    keys: Option<(Arc<crate::keys::Keys>, Arc<crate::keys::record::KeyRecord>)>,
    model: String,
    request_id: String,
    outcome: OutcomeHandle,
    tracker: Option<Tracker>,
}

impl Drop for EndOfStream {
    fn drop(&mut self) {
        let outcome = self.outcome.lock().ok().and_then(|o| *o);
        // A stream that ended without its last piece failed or was cut.
        let class = outcome.is_none().then(|| "incomplete_stream".to_string());
        let tracker = self.tracker.take();
        match (outcome, self.keys.take()) {
            (Some(outcome), Some((keys, rec))) => {
                let (model, id) = (
                    std::mem::take(&mut self.model),
                    std::mem::take(&mut self.request_id),
                );
                let home = keys.home().clone();
                home.spawn(async move {
                    let spend = keys.charge(&rec, &model, &id, outcome).await;
                    if let Some(t) = tracker {
                        t.finish(200, Some(outcome), Some(spend), None);
                    }
                });
            }
            (outcome, _) => {
                if let Some(t) = tracker {
                    t.finish(200, outcome, None, class);
                }
            }
        }
    }
}
