//! Signing in with the master key, and signing out.

use crate::auth;
use crate::state::Gateway;
use crate::ui::session::{self, Session};
use crate::ui::{db_error, keys_of, layout};
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::sync::Arc;

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    master_key: String,
}

fn form_page(status: StatusCode, message: Option<&str>) -> Response {
    layout::respond(
        status,
        layout::page(
            "Sign in",
            "",
            None,
            html! {
                div.signin {
                    h1 { "agentbridge admin" }
                    @if let Some(m) = message {
                        p.notice.error role="alert" id="signin-error" { (m) }
                    }
                    form.stack method="post" action="/ui/login" {
                        label for="master_key" {
                            "Master key"
                            small { "general_settings.master_key of this gateway" }
                            input #master_key type="password" name="master_key" autocomplete="current-password" required autofocus;
                        }
                        button type="submit" { "Sign in" }
                    }
                }
            },
        ),
    )
}

/// `GET /ui/login`.
pub async fn form() -> Response {
    form_page(StatusCode::OK, None)
}

/// `POST /ui/login`: the master key (compared in constant time) starts a session; anything
/// else, a virtual key included, is refused with 401.
pub async fn sign_in(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let is_master = gw
        .master_key
        .as_ref()
        .is_some_and(|m| !f.master_key.is_empty() && auth::same_key(f.master_key.trim(), m));
    if !is_master {
        tracing::warn!("admin UI: refused a sign-in that was not the master key");
        return form_page(
            StatusCode::UNAUTHORIZED,
            Some(
                "That is not this gateway's master key. Only the master key signs in; virtual keys cannot.",
            ),
        );
    }
    let ttl = (gw.server.ui_session_hours * 3600.0) as i64;
    let (value, stored) = session::new_session(ttl);
    if let Err(e) = keys
        .store()
        .create_session(&session::id_hash(&value), &stored)
        .await
    {
        return db_error(e, None);
    }
    let mut r = Redirect::to("/ui/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(&value, ttl, session::over_tls(&headers)),
    );
    r
}

/// `POST /ui/logout`: ends the session here and on every instance.
pub async fn sign_out(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Extension(s): Extension<Session>,
) -> Response {
    if let Ok(keys) = keys_of(&gw)
        && let Err(e) = keys.store().delete_session(&s.id_hash).await
    {
        return db_error(e, Some(&s.csrf));
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::clear_cookie(session::over_tls(&headers)),
    );
    r
}
