//! LiteLLM's key management API: `/key/generate`, `/key/info`, `/key/update`,
//! `/key/delete`, `/key/list`, and spend reporting (`/spend/logs`, `/spend/summary`).
//! Master key only.

use super::record::{KeyRecord, now, parse_duration};
use super::{Caller, Keys, db_err, token_of};
use crate::error::{ProxyError, Result};
use crate::state::Gateway;
use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn keys(gw: &Gateway, caller: &Caller) -> Result<Arc<Keys>> {
    if !matches!(caller, Caller::Admin) {
        return Err(ProxyError::Forbidden(
            "key management needs the master key".into(),
        ));
    }
    gw.keys.clone().ok_or_else(|| {
        ProxyError::Forbidden("virtual keys need general_settings.master_key in the config".into())
    })
}

/// Fields of `/key/generate` and `/key/update`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyFields {
    /// For `/key/update`: the key (or its token).
    #[serde(default)]
    pub key: Option<String>,
    /// Allowed model names (empty: all).
    pub models: Option<Vec<String>>,
    /// USD budget.
    pub max_budget: Option<f64>,
    /// Budget period (`30d`, ...).
    pub budget_duration: Option<String>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// Lifetime from now (`30d`, ...).
    pub duration: Option<String>,
    /// A name for people.
    pub key_alias: Option<String>,
    /// Free-form metadata (an object).
    pub metadata: Option<Value>,
}

fn bad(field: &str, msg: impl Into<String>) -> ProxyError {
    ProxyError::BadRequest {
        message: msg.into(),
        param: Some(field.into()),
    }
}

fn parse_fields(body: &[u8]) -> Result<KeyFields> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(KeyFields::default());
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| {
        let p = e.path().to_string();
        bad(&p, format!("{p}: {}", e.inner()))
    })
}

fn seconds(field: &str, value: &str) -> Result<i64> {
    parse_duration(value).ok_or_else(|| {
        bad(
            field,
            format!("{field} must look like 30s, 10m, 1h, 7d or 1mo"),
        )
    })
}

fn apply(rec: &mut KeyRecord, f: &KeyFields) -> Result<()> {
    if let Some(m) = &f.models {
        rec.models = m.clone();
    }
    if let Some(b) = f.max_budget {
        if !(b >= 0.0 && b.is_finite()) {
            return Err(bad(
                "max_budget",
                "max_budget must be a non-negative number of USD",
            ));
        }
        rec.max_budget = Some(b);
    }
    if let Some(d) = &f.budget_duration {
        let secs = seconds("budget_duration", d)?;
        rec.budget_duration = Some(d.clone());
        rec.budget_reset_at = Some(now() + secs);
    }
    for (name, v, slot) in [
        ("rpm_limit", f.rpm_limit, &mut rec.rpm_limit),
        ("tpm_limit", f.tpm_limit, &mut rec.tpm_limit),
    ] {
        if let Some(n) = v {
            if n < 0 {
                return Err(bad(name, format!("{name} must be >= 0")));
            }
            *slot = Some(n);
        }
    }
    if let Some(d) = &f.duration {
        rec.expires = Some(now() + seconds("duration", d)?);
    }
    if let Some(a) = &f.key_alias {
        rec.key_alias = Some(a.clone());
    }
    if let Some(m) = &f.metadata {
        if !m.is_object() {
            return Err(bad("metadata", "metadata must be an object"));
        }
        rec.metadata = m.clone();
    }
    Ok(())
}

/// Creates a key with `f`'s settings: returns the key (shown once, never stored) and its
/// record. `/key/generate` and the admin UI both create keys here.
pub async fn create_key(keys: &Keys, f: &KeyFields) -> Result<(String, KeyRecord)> {
    let key = format!("sk-{}", hex::encode(rand::random::<[u8; 24]>()));
    let mut rec = KeyRecord::unlimited(
        token_of(&key),
        format!("{}...{}", &key[..6], &key[key.len() - 4..]),
        now(),
    );
    apply(&mut rec, f)?;
    keys.store.insert(&rec).await.map_err(db_err)?;
    Ok((key, rec))
}

/// `POST /key/generate`.
pub async fn generate(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let keys = keys(&gw, &caller)?;
    let f = parse_fields(&body)?;
    let (key, rec) = create_key(&keys, &f).await?;
    let mut out = serde_json::to_value(&rec).unwrap_or_default();
    out["key"] = json!(key);
    Ok(Json(out))
}

/// Query of `/key/info`.
#[derive(Debug, Deserialize)]
pub struct KeyQuery {
    key: Option<String>,
}

fn token_param(k: &str) -> String {
    if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) {
        k.to_string()
    } else {
        token_of(k)
    }
}

/// `GET /key/info?key=...` (the key or its token).
pub async fn info(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<Value>> {
    let keys = keys(&gw, &caller)?;
    let k = q
        .key
        .ok_or_else(|| bad("key", "missing query parameter: key"))?;
    let token = token_param(&k);
    let rec = keys
        .store
        .get(&token)
        .await
        .map_err(db_err)?
        .ok_or_else(|| ProxyError::NotFound(format!("key {}", &token[..12])))?;
    let spend = keys.spend(&rec).await?;
    let mut info = serde_json::to_value(&rec).unwrap_or_default();
    info["spend"] = json!(spend);
    Ok(Json(json!({"key": token, "info": info})))
}

/// Changes the settings `f` names of the live key `key` (the key or its token).
/// `/key/update` and the admin UI both change keys here.
pub async fn update_key(keys: &Keys, key: &str, f: &KeyFields) -> Result<KeyRecord> {
    let token = token_param(key);
    let mut rec = keys
        .store
        .get(&token)
        .await
        .map_err(db_err)?
        .filter(|r| r.deleted_at.is_none())
        .ok_or_else(|| ProxyError::NotFound(format!("key {}", &token[..12])))?;
    apply(&mut rec, f)?;
    keys.store.update(&rec).await.map_err(db_err)?;
    keys.forget(&token);
    Ok(rec)
}

/// `POST /key/update`.
pub async fn update(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let keys = keys(&gw, &caller)?;
    let f = parse_fields(&body)?;
    let k = f
        .key
        .clone()
        .ok_or_else(|| bad("key", "missing field: key"))?;
    let rec = update_key(&keys, &k, &f).await?;
    Ok(Json(serde_json::to_value(&rec).unwrap_or_default()))
}

/// Body of `/key/delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    keys: Vec<String>,
}

/// `POST /key/delete` with `{"keys": [...]}`.
pub async fn delete(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let keys = keys(&gw, &caller)?;
    let b: DeleteBody = serde_json::from_slice(&body)
        .map_err(|e| bad("keys", format!("expected {{\"keys\": [...]}}: {e}")))?;
    let deleted = delete_keys(&keys, &b.keys).await?;
    Ok(Json(json!({"deleted_keys": deleted})))
}

/// Deletes (revokes) keys, each given as the key or its token; returns those that were
/// live. `/key/delete` and the admin UI both revoke keys here.
pub async fn delete_keys(keys: &Keys, list: &[String]) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for k in list {
        let token = token_param(k);
        if keys.store.delete(&token, now()).await.map_err(db_err)? {
            deleted.push(k.clone());
        }
        keys.forget(&token);
    }
    if deleted.is_empty() && !list.is_empty() {
        return Err(ProxyError::NotFound("none of these keys exist".into()));
    }
    Ok(deleted)
}

/// `GET /key/list`.
pub async fn list(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>> {
    let keys = keys(&gw, &caller)?;
    let all = keys.store.list().await.map_err(db_err)?;
    let tokens: Vec<&str> = all.iter().map(|r| r.token.as_str()).collect();
    Ok(Json(
        json!({"keys": tokens, "total_count": all.len(), "info": all}),
    ))
}

/// `GET /spend/logs?api_key=&model=&limit=`.
pub async fn logs(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let keys = keys(&gw, &caller)?;
    keys.flush().await.map_err(db_err)?;
    let api_key = q.get("api_key").map(|k| token_param(k)).unwrap_or_default();
    let model = q.get("model").cloned().unwrap_or_default();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000i64)
        .clamp(1, 100_000);
    let logs = keys
        .store
        .logs(&api_key, &model, limit)
        .await
        .map_err(db_err)?;
    Ok(Json(serde_json::to_value(logs).unwrap_or_default()))
}

/// `GET /spend/summary`: total spend and calls per key and per model.
pub async fn summary(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>> {
    let keys = keys(&gw, &caller)?;
    keys.flush().await.map_err(db_err)?;
    let group = |rows: Vec<(String, f64, i64)>| -> Value {
        rows.into_iter()
            .map(|(n, s, c)| (n, json!({"spend": s, "calls": c})))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let by_key = group(keys.store.totals(false).await.map_err(db_err)?);
    let by_model = group(keys.store.totals(true).await.map_err(db_err)?);
    Ok(Json(json!({"by_key": by_key, "by_model": by_model})))
}
