//! Keys: the list (alias, models, spend against budget, limits, expiry), creating a key
//! (shown once, on the response to the form, never again), editing its limits, revoking it.
//! Every change goes through the same functions as `/key/*` ([`crate::keys::admin`]).

use super::key_label;
use crate::keys::admin::{self, KeyFields};
use crate::keys::record::{KeyRecord, now};
use crate::state::Gateway;
use crate::ui::session::Session;
use crate::ui::{FormData, db_error, keys_of, layout};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::sync::Arc;

/// The fields of the create and edit forms as `/key/*` takes them; empty fields are left
/// out (unchanged). A number that does not parse is an error naming the field.
pub fn fields(form: &FormData) -> Result<KeyFields, String> {
    fn num<T: std::str::FromStr>(form: &FormData, name: &str) -> Result<Option<T>, String> {
        form.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| format!("{name}: {v:?} is not a number"))
            })
            .transpose()
    }
    Ok(KeyFields {
        key: None,
        models: form.get("models").map(|m| {
            m.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect()
        }),
        max_budget: num(form, "max_budget")?,
        budget_duration: form.get("budget_duration").map(str::to_string),
        rpm_limit: num(form, "rpm_limit")?,
        tpm_limit: num(form, "tpm_limit")?,
        duration: form.get("duration").map(str::to_string),
        key_alias: form.get("key_alias").map(str::to_string),
        metadata: None,
    })
}

fn limit(v: Option<i64>) -> String {
    v.map_or("none".to_string(), |n| layout::count(n as f64))
}

fn key_form(csrf: &str, action: &str, rec: Option<&KeyRecord>, submit: &str) -> Markup {
    let text = |v: Option<String>| v.unwrap_or_default();
    html! {
        form.stack method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            label for="key_alias" { "Alias" input #key_alias name="key_alias" value=(text(rec.and_then(|r| r.key_alias.clone()))); }
            label for="models" { "Models" small { "comma-separated; empty allows all" } input #models name="models" value=(rec.map(|r| r.models.join(", ")).unwrap_or_default()); }
            label for="max_budget" { "Budget (USD)" input #max_budget name="max_budget" inputmode="decimal" value=(text(rec.and_then(|r| r.max_budget).map(|b| b.to_string()))); }
            label for="budget_duration" { "Budget period" small { "e.g. 30d; spend resets" } input #budget_duration name="budget_duration" value=(text(rec.and_then(|r| r.budget_duration.clone()))); }
            label for="rpm_limit" { "Requests per minute" input #rpm_limit name="rpm_limit" inputmode="numeric" value=(text(rec.and_then(|r| r.rpm_limit).map(|n| n.to_string()))); }
            label for="tpm_limit" { "Tokens per minute" input #tpm_limit name="tpm_limit" inputmode="numeric" value=(text(rec.and_then(|r| r.tpm_limit).map(|n| n.to_string()))); }
            label for="duration" { @if rec.is_some() { "Expires in (from now)" } @else { "Expires in" } small { "e.g. 7d; empty: never" } input #duration name="duration"; }
            button type="submit" { (submit) }
        }
    }
}

async fn list_page(gw: &Gateway, s: &Session, status: StatusCode, notice: Markup) -> Response {
    let keys = match keys_of(gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let all = match keys.store().list().await {
        Ok(k) => k,
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let mut spends = Vec::with_capacity(all.len());
    for k in &all {
        spends.push(keys.spend(k).await.unwrap_or(k.spend));
    }
    let t = now();
    let body = html! {
        h1 { "Keys" }
        (notice)
        h2 { "Virtual keys (" (all.len()) ")" }
        div.table-wrap {
            table.responsive #keys {
                thead { tr {
                    th scope="col" { "Alias" } th scope="col" { "Key" } th scope="col" { "Models" }
                    th scope="col" { "Spend / budget" } th scope="col" { "Limits" } th scope="col" { "Expires" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for (k, spend) in all.iter().zip(&spends) {
                        tr data-token=(k.token) {
                            td data-label="Alias" { (key_label(k.key_alias.as_deref(), &k.key_name)) }
                            td data-label="Key" { code { (k.key_name) } }
                            td data-label="Models" { @if k.models.is_empty() { span.muted { "all" } } @else { (k.models.join(", ")) } }
                            td data-label="Spend / budget" {
                                @match k.max_budget {
                                    Some(b) => {
                                        span.meter {
                                            progress max=(b) value=(spend.min(b)) aria-label={ "spend of " (key_label(k.key_alias.as_deref(), &k.key_name)) } {}
                                            span { (layout::usd(*spend)) " of " (layout::usd(b)) }
                                        }
                                        @if let Some(d) = &k.budget_duration { br; span.muted { "resets every " (d) } }
                                    }
                                    None => { (layout::usd(*spend)) " " span.muted { "(no budget)" } }
                                }
                            }
                            td data-label="Limits" { "rpm " (limit(k.rpm_limit)) br; "tpm " (limit(k.tpm_limit)) }
                            td data-label="Expires" {
                                @match k.expires {
                                    Some(e) if e <= t => { span.status-error { "expired " (layout::time(e * 1000)) } }
                                    Some(e) => { (layout::time(e * 1000)) }
                                    None => { span.muted { "never" } }
                                }
                            }
                            td data-label="Actions" {
                                a href={ "/ui/keys/" (k.token) } aria-label={ "Edit " (key_label(k.key_alias.as_deref(), &k.key_name)) } { "Edit" }
                                " "
                                form.inline method="post" action={ "/ui/keys/" (k.token) "/revoke" } {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    button.danger type="submit" aria-label={ "Revoke " (key_label(k.key_alias.as_deref(), &k.key_name)) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 #create { "Create a key" }
        (key_form(&s.csrf, "/ui/keys", None, "Create key"))
    };
    layout::respond(
        status,
        layout::page("Keys", "/ui/keys", Some(&s.csrf), body),
    )
}

/// `GET /ui/keys`.
pub async fn list(State(gw): State<Arc<Gateway>>, Extension(s): Extension<Session>) -> Response {
    list_page(&gw, &s, StatusCode::OK, html! {}).await
}

/// `POST /ui/keys`: creates a key and shows it in this response only.
pub async fn create(
    State(gw): State<Arc<Gateway>>,
    Extension(s): Extension<Session>,
    Extension(form): Extension<FormData>,
) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let created = match fields(&form) {
        Ok(f) => admin::create_key(keys, &f).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match created {
        Ok((key, rec)) => {
            let notice = html! {
                div.notice role="status" #new-key {
                    p { strong { "Key created: " (key_label(rec.key_alias.as_deref(), &rec.key_name)) } }
                    p { "Copy it now: it is shown this once and cannot be shown again." }
                    output.secret #new-key-value { (key) }
                }
            };
            list_page(&gw, &s, StatusCode::OK, notice).await
        }
        Err(e) => {
            let notice = html! { p.notice.error role="alert" { "The key was not created: " (e) } };
            list_page(&gw, &s, StatusCode::BAD_REQUEST, notice).await
        }
    }
}

/// `GET /ui/keys/{token}`: the edit form.
pub async fn edit(
    State(gw): State<Arc<Gateway>>,
    Extension(s): Extension<Session>,
    Path(token): Path<String>,
) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let rec = match keys.store().get(&token).await {
        Ok(Some(r)) if r.deleted_at.is_none() => r,
        Ok(_) => {
            return layout::error_page(
                StatusCode::NOT_FOUND,
                "No such key (or it was revoked).",
                Some(&s.csrf),
            );
        }
        Err(e) => return db_error(e, Some(&s.csrf)),
    };
    let name = key_label(rec.key_alias.as_deref(), &rec.key_name);
    let body = html! {
        h1 { "Edit key " (name) }
        p { "Key " code { (rec.key_name) } ". Empty fields stay as they are." }
        (key_form(&s.csrf, &format!("/ui/keys/{}", rec.token), Some(&rec), "Save"))
        p { a href="/ui/keys" { "Back to the keys" } }
    };
    layout::respond(
        StatusCode::OK,
        layout::page("Edit key", "/ui/keys", Some(&s.csrf), body),
    )
}

/// `POST /ui/keys/{token}`: changes the key's settings.
pub async fn update(
    State(gw): State<Arc<Gateway>>,
    Extension(s): Extension<Session>,
    Extension(form): Extension<FormData>,
    Path(token): Path<String>,
) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let updated = match fields(&form) {
        Ok(f) => admin::update_key(keys, &token, &f)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match updated {
        Ok(_) => Redirect::to("/ui/keys").into_response(),
        Err(e) => layout::error_page(
            StatusCode::BAD_REQUEST,
            &format!("The key was not changed: {e}"),
            Some(&s.csrf),
        ),
    }
}

/// `POST /ui/keys/{token}/revoke`: deletes the key; its next call is refused.
pub async fn revoke(
    State(gw): State<Arc<Gateway>>,
    Extension(s): Extension<Session>,
    Path(token): Path<String>,
) -> Response {
    let keys = match keys_of(&gw) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    match admin::delete_keys(keys, std::slice::from_ref(&token)).await {
        Ok(_) => Redirect::to("/ui/keys").into_response(),
        Err(e) => layout::error_page(e.status(), &e.to_string(), Some(&s.csrf)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormData {
        FormData(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn form_fields_become_key_fields_and_empty_ones_stay_unset() {
        let f = fields(&form(&[
            ("key_alias", " team-a "),
            ("models", "m1, m2,,"),
            ("max_budget", "12.5"),
            ("rpm_limit", ""),
            ("tpm_limit", "1000"),
        ]))
        .unwrap();
        assert_eq!(f.key_alias.as_deref(), Some("team-a"));
        assert_eq!(f.models, Some(vec!["m1".to_string(), "m2".to_string()]));
        assert_eq!(f.max_budget, Some(12.5));
        assert_eq!(f.rpm_limit, None);
        assert_eq!(f.tpm_limit, Some(1000));
        assert_eq!(f.duration, None);
    }

    #[test]
    fn a_number_that_does_not_parse_names_its_field() {
        let e = fields(&form(&[("rpm_limit", "ten")])).unwrap_err();
        assert!(e.starts_with("rpm_limit:"), "{e}");
    }
}
