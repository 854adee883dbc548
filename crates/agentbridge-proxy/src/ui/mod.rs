//! The admin web UI at `/ui`: keys, spend and requests at a glance, served by the gateway
//! itself whenever a master key is configured (there is no key store without one).
//!
//! Pages are rendered on the server with `maud` (templates compiled with the code, every
//! value escaped); charts are inline SVG ([`charts`]); the stylesheet is compiled into the
//! binary and inlined, so a page is one response and the UI needs no network and no
//! JavaScript. Every route but the sign-in page goes through [`guard`]: without a live
//! session a page redirects to the sign-in page and anything else gets 403; a POST must
//! carry the session's form token ([`session`]). Database work runs on the key store's
//! runtime, like `/key/*`.

pub mod charts;
pub mod layout;
pub mod pages;
pub mod session;

use crate::keys::Keys;
use crate::keys::record::now;
use crate::state::{AppState, Gateway};
use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Largest form body the UI accepts.
pub const MAX_FORM_BYTES: usize = 64 << 10;

/// The fields of a posted form, parsed by [`guard`] once its token was checked.
#[derive(Debug, Clone, Default)]
pub struct FormData(pub HashMap<String, String>);

impl FormData {
    /// A field, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

/// The UI's routes, when the gateway has a key store (a master key is configured).
pub fn router(gw: &Arc<Gateway>) -> Option<Router<AppState>> {
    gw.keys.as_ref()?;
    let guarded = Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::overview::page))
        .route("/ui/keys", get(pages::keys::list).post(pages::keys::create))
        .route(
            "/ui/keys/{token}",
            get(pages::keys::edit).post(pages::keys::update),
        )
        .route("/ui/keys/{token}/revoke", post(pages::keys::revoke))
        .route("/ui/models", get(pages::models::page))
        .route("/ui/requests", get(pages::requests::page))
        .route("/ui/logout", post(pages::signin::sign_out))
        .route_layer(from_fn_with_state(Arc::clone(gw), guard));
    let open = Router::new().route(
        "/ui/login",
        get(pages::signin::form).post(pages::signin::sign_in),
    );
    Some(
        Router::new()
            .merge(guarded)
            .merge(open)
            .route_layer(from_fn_with_state(Arc::clone(gw), timed))
            .route_layer(from_fn_with_state(Arc::clone(gw), crate::routes::at_home)),
    )
}

/// The key service (the UI is only routed when there is one).
pub fn keys_of(gw: &Gateway) -> Result<&Arc<Keys>, Box<Response>> {
    gw.keys.as_ref().ok_or_else(|| {
        Box::new(layout::error_page(
            StatusCode::NOT_FOUND,
            "the admin UI needs general_settings.master_key",
            None,
        ))
    })
}

/// A database error as a page (the details go to the log, not to the page).
pub fn db_error(e: impl std::fmt::Display, csrf: Option<&str>) -> Response {
    tracing::error!(error = %e, "admin UI: database error");
    layout::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The key store's database did not answer; retry shortly.",
        csrf,
    )
}

/// Adds `Server-Timing: app;dur=MS` (the time the gateway spent on the page) to UI responses.
async fn timed(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut r = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        r.headers_mut().insert("server-timing", v);
    }
    r
}

/// Lets a request through only with a live session: pages without one redirect to the
/// sign-in page, anything else gets 403. A POST must carry the session's form token in
/// its `csrf` field (403 otherwise); its fields reach the handler as [`FormData`].
pub async fn guard(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => Arc::clone(k),
        Err(r) => return *r,
    };
    let page = req.method() == Method::GET || req.method() == Method::HEAD;
    let refuse = || {
        if page {
            Redirect::to("/ui/login").into_response()
        } else {
            layout::error_page(
                StatusCode::FORBIDDEN,
                "Sign in first: this form needs a signed-in session.",
                None,
            )
        }
    };
    let Some(cookie) = session::cookie_value(req.headers()) else {
        return refuse();
    };
    let id_hash = session::id_hash(cookie);
    let stored = match keys.store().session(&id_hash, now()).await {
        Ok(Some(s)) => s,
        Ok(None) => return refuse(),
        Err(e) => return db_error(e, None),
    };
    let s = session::Session {
        id_hash,
        csrf: stored.csrf,
    };
    let mut req = req;
    if !page {
        let (parts, body) = req.into_parts();
        let bytes = match crate::routes::read_body(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(e) => return layout::error_page(e.status(), &e.to_string(), Some(&s.csrf)),
        };
        let parsed = axum::extract::Form::<Vec<(String, String)>>::from_request(
            Request::from_parts(parts.clone(), axum::body::Body::from(bytes)),
            &(),
        )
        .await;
        let fields: HashMap<String, String> = match parsed {
            Ok(axum::extract::Form(f)) => f.into_iter().collect(),
            Err(_) => HashMap::new(),
        };
        if !session::csrf_ok(&s, fields.get("csrf").map(String::as_str)) {
            return layout::error_page(
                StatusCode::FORBIDDEN,
                "This form's token is missing or out of date: reload the page and try again.",
                Some(&s.csrf),
            );
        }
        req = Request::from_parts(parts, axum::body::Body::empty());
        req.extensions_mut().insert(FormData(fields));
    }
    req.extensions_mut().insert(s);
    let mut r = next.run(req).await;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
