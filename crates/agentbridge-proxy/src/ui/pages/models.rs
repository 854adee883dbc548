//! Models and deployments: each `model_name`, its fallbacks, and each deployment's target,
//! endpoint and state as this instance's router sees it (healthy or cooling down, the last
//! error, in flight, this minute's requests and tokens).

use crate::router::health::now_ms;
use crate::state::Gateway;
use crate::ui::layout;
use crate::ui::session::Session;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use std::sync::Arc;

/// `GET /ui/models`.
pub async fn page(State(gw): State<Arc<Gateway>>, Extension(s): Extension<Session>) -> Response {
    let t = now_ms();
    let settings = &gw.router.settings;
    let body = html! {
        h1 { "Models & deployments" }
        p { "Routing strategy: " strong { (settings.strategy.name()) } ". " (gw.models.len()) " model names; state as this instance's router sees it." }
        @for (name, group) in &gw.models {
            section aria-labelledby={ "model-" (name) } {
                h2 id={ "model-" (name) } { code { (name) } }
                @let fallbacks = settings.fallbacks_of(name);
                @if !fallbacks.is_empty() { p { "Falls back to: " (fallbacks.join(", ")) } }
                div.table-wrap {
                    table.responsive data-model=(name) {
                        thead { tr {
                            th scope="col" { "Deployment" } th scope="col" { "Target" } th scope="col" { "Provider" }
                            th scope="col" { "Region / endpoint" } th scope="col" { "State" } th.num scope="col" { "In flight" }
                            th.num scope="col" { "Requests this minute" } th scope="col" { "Last error" }
                        } }
                        tbody {
                            @for m in group.members() {
                                @let r = m.health.report(t);
                                @let healthy = r["state"] == "healthy";
                                tr {
                                    td data-label="Deployment" { code { (&*m.id) } }
                                    td data-label="Target" { code { (m.deployment.settings.target.model()) } }
                                    td data-label="Provider" { (m.deployment.settings.target.provider()) }
                                    td data-label="Region / endpoint" { (m.deployment.region) br; span.muted { (m.deployment.endpoint) } }
                                    td data-label="State" {
                                        @if healthy { span.status-ok { "healthy" } }
                                        @else { span.status-error { "cooling down until " (r["cooldown_until"].as_str().unwrap_or("?")) } }
                                    }
                                    td.num data-label="In flight" { (r["in_flight"]) }
                                    td.num data-label="Requests this minute" { (r["requests_this_minute"]) }
                                    td data-label="Last error" {
                                        @if let Some(e) = r["last_error"].as_object() {
                                            (e.get("at").and_then(|v| v.as_str()).unwrap_or("")) ": "
                                            (e.get("code").map(|v| v.to_string()).unwrap_or_default()) " "
                                            (e.get("message").and_then(|v| v.as_str()).unwrap_or(""))
                                        } @else { span.muted { "none" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page("Models", "/ui/models", Some(&s.csrf), body),
    )
}
