//! LiteLLM's proxy config format, read as data.
//!
//! `model_list[].model_name` + `litellm_params` become deployments; `general_settings.
//! master_key` guards the API. `os.environ/VAR` strings are resolved once, here. Every
//! problem is reported with its key path (`model_list[1].litellm_params.model`); LiteLLM keys
//! agentbridge does not use are warnings; typos in agentbridge's own `agentbridge:` section
//! are errors.

use agentbridge::DeploymentSettings;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// Master keys seen in documentation, refused unless explicitly allowed.
const SAMPLE_KEYS: &[&str] = &[
    "sk-1234",
    "sk-12345",
    "sk-123456789",
    "your-litellm-api-key",
    "your-master-key",
    "changeme",
    "password",
    "sk-xxxxxxxxxxxxxxxx",
    "sk-my-master-key-123",
];
/// The shortest master key accepted.
pub const MIN_MASTER_KEY_LEN: usize = 16;

/// One served model name and the deployment behind it.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// `model_name`: what clients ask for.
    pub name: String,
    /// `litellm_params`, parsed.
    pub settings: DeploymentSettings,
    /// Routing facts: `model_info.id`, `rpm`, `tpm`, `weight`.
    pub info: crate::router::settings::DeploymentInfo,
}

/// agentbridge's own server settings (`agentbridge:` section; flags override).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Largest request body, bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Seconds a client may take to send a request's headers (default 30). The same timer
    /// runs while a kept-alive connection waits for its next request, so it is also the
    /// idle timeout of client connections.
    pub header_read_timeout_secs: f64,
    /// Requests handled at once; more get 503 (default 1024).
    pub max_concurrent_requests: usize,
    /// Seconds in-flight requests get to finish on shutdown (default 30).
    pub shutdown_grace_secs: f64,
    /// Threads serving requests, each with its own runtime and upstream connections
    /// (default 0: one per CPU).
    pub workers: usize,
    /// What virtual-key requests get while Redis (`redis_url`) is unreachable: counted in
    /// per-instance windows (`per_instance`, the default) or refused with 503 (`refuse`).
    pub redis_outage: RedisOutage,
    /// A pinned session whose deployment fails (or cools down) may move to another
    /// deployment or fallback group, which starts it afresh (`x-agentbridge-session-new:
    /// true`). Default false: the session's own deployment answers, or its error does.
    pub session_failover: bool,
    /// Serve Prometheus metrics at `/metrics` (as LiteLLM's `callbacks: ["prometheus"]`).
    pub metrics: bool,
    /// One JSON object per log line (as LiteLLM's `json_logs: true`).
    pub json_logs: bool,
    /// Keep the request log (the admin UI's request list and charts) when there is a key
    /// store (default true; LiteLLM's `general_settings.disable_spend_logs: true` turns it
    /// off too). Spend, budgets and limits do not depend on it.
    pub request_log: bool,
    /// Days the request log (the admin UI's list and charts) keeps a request (default 30).
    pub request_log_retention_days: f64,
    /// Hours an admin UI sign-in lasts (default 8).
    pub ui_session_hours: f64,
}

/// What happens to rate limits and budgets while Redis is unreachable.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RedisOutage {
    /// Count in this instance's own windows; what was counted is added to Redis when it
    /// returns.
    #[default]
    PerInstance,
    /// Refuse requests that need a shared counter (keys with rpm, tpm or budget limits) with
    /// 503 until Redis returns.
    Refuse,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 << 20,
            header_read_timeout_secs: 30.0,
            max_concurrent_requests: 1024,
            shutdown_grace_secs: 30.0,
            workers: 0,
            redis_outage: RedisOutage::PerInstance,
            session_failover: false,
            metrics: false,
            json_logs: false,
            request_log: true,
            request_log_retention_days: 30.0,
            ui_session_hours: 8.0,
        }
    }
}

impl ServerSettings {
    /// Header read timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_read_timeout_secs)
    }
    /// Shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_secs)
    }
}

/// A loaded config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Served models, in config order.
    pub models: Vec<ModelEntry>,
    /// `general_settings.master_key`.
    pub master_key: Option<SecretString>,
    /// `general_settings.database_url` (or `DATABASE_URL`).
    pub database_url: Option<SecretString>,
    /// `general_settings.redis_url` (or `REDIS_URL`): shared rate limits and budgets.
    pub redis_url: Option<SecretString>,
    /// Where the embedded SQLite database goes when no database URL is set: next to the config.
    pub default_database: Option<std::path::PathBuf>,
    /// Server settings.
    pub server: ServerSettings,
    /// `router_settings` (and the router's names in `litellm_settings`).
    pub router: crate::router::settings::RouterSettings,
    /// Metrics and logs (LiteLLM's settings and agentbridge's, merged).
    pub observe: crate::observe::ObserveSettings,
    /// Which models pass the client's headers on to their agents.
    pub forward_headers: ForwardHeaders,
    /// Keys that were ignored, for the start-up log.
    pub warnings: Vec<String>,
}

/// LiteLLM's `forward_client_headers_to_llm_api`: which models pass the client's `x-`
/// headers on to their agents (`routes::forwarded_headers` says which headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardHeaders {
    /// `general_settings.forward_client_headers_to_llm_api: true`: every model.
    pub all: bool,
    /// `litellm_settings.model_group_settings.forward_client_headers_to_llm_api`: these
    /// model names (a trailing `*` matches names that start with what precedes it).
    pub models: Vec<String>,
}

impl ForwardHeaders {
    /// Whether model `name` forwards the client's headers.
    pub fn applies_to(&self, name: &str) -> bool {
        self.all
            || self.models.iter().any(|m| match m.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => m == name,
            })
    }
}

/// Every problem found in a config.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid config:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per problem, each naming its key path.
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(p: impl Into<String>) -> Self {
        Self {
            problems: vec![p.into()],
        }
    }
}

/// Options that change how a config is judged.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Accept a short or sample master key.
    pub allow_weak_master_key: bool,
}

/// Reads and validates the config file at `path`, resolving `os.environ/` from the process
/// environment.
pub fn load(path: &std::path::Path, opts: LoadOptions) -> Result<Config, ConfigError> {
    load_with_env(path, opts, &|k| std::env::var(k).ok())
}

/// Like [`load`], with `env` resolving `os.environ/VAR`.
pub fn load_with_env(
    path: &std::path::Path,
    opts: LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::one(format!("{}: cannot read: {e}", path.display())))?;
    let mut cfg = parse(&text, env, opts).map_err(|e| ConfigError {
        problems: e
            .problems
            .into_iter()
            .map(|p| format!("{}: {p}", path.display()))
            .collect(),
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    cfg.default_database = Some(dir.join("agentbridge.db"));
    Ok(cfg)
}

/// Parses and validates config text. `env` resolves `os.environ/VAR`.
pub fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    opts: LoadOptions,
) -> Result<Config, ConfigError> {
    let root: Value =
        serde_norway::from_str(text).map_err(|e| ConfigError::one(format!("YAML: {e}")))?;
    let root = match root {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => {
            return Err(ConfigError::one(
                "the config must be a mapping with a model_list",
            ));
        }
    };
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for k in root.keys() {
        if ![
            "model_list",
            "general_settings",
            "litellm_settings",
            "router_settings",
            "agentbridge",
            "environment_variables",
        ]
        .contains(&k.as_str())
        {
            warnings.push(format!("{k}: unknown top-level key, ignored"));
        } else if k == "environment_variables" {
            warnings.push(format!("{k}: not used by agentbridge, ignored"));
        }
    }
    let mut observe = crate::observe::ObserveSettings::default();
    let mut forward_headers = ForwardHeaders::default();
    read_litellm_settings(
        root.get("litellm_settings"),
        &mut observe,
        &mut forward_headers,
        &mut warnings,
        &mut problems,
    );

    let mut models = Vec::new();
    let mut own_timeout = Vec::new();
    match root.get("model_list") {
        None | Some(Value::Null) => {
            problems.push("model_list: required, a list of {model_name, litellm_params}".into())
        }
        Some(Value::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                let at = format!("model_list[{i}]");
                let Some(m) = item.as_object() else {
                    problems.push(format!(
                        "{at}: expected a mapping with model_name and litellm_params"
                    ));
                    continue;
                };
                for k in m.keys() {
                    if !["model_name", "litellm_params", "model_info", "rpm", "tpm"]
                        .contains(&k.as_str())
                    {
                        warnings.push(format!("{at}.{k}: unknown key, ignored"));
                    }
                }
                let name = match m.get("model_name") {
                    Some(Value::String(s)) if !s.is_empty() => s.clone(),
                    _ => {
                        problems.push(format!("{at}.model_name: required, a non-empty string"));
                        continue;
                    }
                };
                let params = match m.get("litellm_params") {
                    Some(Value::Object(p)) => p.clone(),
                    _ => {
                        problems.push(format!(
                            "{at}.litellm_params: required, a mapping with model"
                        ));
                        continue;
                    }
                };
                let mut params = params;
                if let Err(e) = resolve_env(&mut params, &format!("{at}.litellm_params"), env) {
                    problems.extend(e);
                    continue;
                }
                let model = match params.get("model") {
                    Some(Value::String(s)) => s.clone(),
                    _ => {
                        problems.push(format!("{at}.litellm_params.model: required, e.g. bedrock/agent/AGENT_ID/ALIAS_ID"));
                        continue;
                    }
                };
                let info = crate::router::settings::deployment_info(m, &params, &at, &mut problems);
                match DeploymentSettings::from_params(&model, &params) {
                    Ok(settings) => {
                        own_timeout.push(params.contains_key("timeout"));
                        models.push(ModelEntry {
                            name,
                            settings,
                            info,
                        })
                    }
                    Err(errs) => {
                        for e in errs {
                            problems.push(format!("{at}.litellm_params.{}: {}", e.key, e.message));
                        }
                    }
                }
            }
            if list.is_empty() {
                problems.push("model_list: is empty; add at least one model".into());
            }
        }
        Some(_) => problems.push("model_list: expected a list".into()),
    }

    let mut master_key = None;
    let mut database_url = env("DATABASE_URL").map(SecretString::from);
    let mut redis_url = env("REDIS_URL").map(SecretString::from);
    let mut disable_spend_logs = false;
    match root.get("general_settings") {
        None | Some(Value::Null) => {}
        Some(Value::Object(g)) => {
            let mut g = g.clone();
            match resolve_env(&mut g, "general_settings", env) {
                Err(e) => problems.extend(e),
                Ok(()) => {
                    for (k, v) in &g {
                        match (k.as_str(), v) {
                            ("master_key", Value::String(s)) => {
                                if !opts.allow_weak_master_key {
                                    if s.len() < MIN_MASTER_KEY_LEN {
                                        problems.push(format!(
                                            "general_settings.master_key: is {} characters; use at least {MIN_MASTER_KEY_LEN} random characters (or start with --allow-weak-master-key for local tests)",
                                            s.len()
                                        ));
                                    } else if SAMPLE_KEYS.contains(&s.as_str()) {
                                        problems.push("general_settings.master_key: is a well-known sample value; use a random key (or --allow-weak-master-key for local tests)".into());
                                    }
                                }
                                master_key = Some(SecretString::from(s.clone()));
                            }
                            ("master_key", Value::Null) => {}
                            ("master_key", _) => problems
                                .push("general_settings.master_key: expected a string".into()),
                            ("database_url", Value::String(s)) => {
                                database_url = Some(SecretString::from(s.clone()))
                            }
                            ("database_url", _) => problems
                                .push("general_settings.database_url: expected a string".into()),
                            ("redis_url", Value::String(s)) => {
                                redis_url = Some(SecretString::from(s.clone()))
                            }
                            ("redis_url", _) => problems
                                .push("general_settings.redis_url: expected a string".into()),
                            ("require_auth_for_metrics_endpoint", Value::Bool(b)) => {
                                observe.metrics_require_auth = *b
                            }
                            ("require_auth_for_metrics_endpoint", _) => problems.push(
                                "general_settings.require_auth_for_metrics_endpoint: expected true or false".into(),
                            ),
                            ("forward_client_headers_to_llm_api", Value::Bool(b)) => {
                                forward_headers.all = *b
                            }
                            ("forward_client_headers_to_llm_api", _) => problems.push(
                                "general_settings.forward_client_headers_to_llm_api: expected true or false (per model: litellm_settings.model_group_settings)".into(),
                            ),
                            ("disable_spend_logs", Value::Bool(b)) => disable_spend_logs = *b,
                            ("disable_spend_logs", _) => problems.push(
                                "general_settings.disable_spend_logs: expected true or false".into(),
                            ),
                            (other, _) => warnings.push(format!(
                                "general_settings.{other}: not used by agentbridge, ignored"
                            )),
                        }
                    }
                }
            }
        }
        Some(_) => problems.push("general_settings: expected a mapping".into()),
    }

    let mut server = match root.get("agentbridge") {
        None | Some(Value::Null) => ServerSettings::default(),
        Some(v) => match serde_path_to_error::deserialize::<_, ServerSettings>(v.clone()) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("agentbridge.{}: {}", e.path(), e.inner()));
                ServerSettings::default()
            }
        },
    };

    server.request_log &= !disable_spend_logs;
    for (name, v) in [
        (
            "request_log_retention_days",
            server.request_log_retention_days,
        ),
        ("ui_session_hours", server.ui_session_hours),
    ] {
        if !(v > 0.0 && v.is_finite()) {
            problems.push(format!(
                "agentbridge.{name}: expected a positive number, got {v}"
            ));
        }
    }

    let router = crate::router::settings::read(&root, &models, env, &mut problems, &mut warnings);
    for name in &forward_headers.models {
        if !name.ends_with('*') && !models.iter().any(|m| &m.name == name) {
            warnings.push(format!(
                "litellm_settings.model_group_settings.forward_client_headers_to_llm_api: {name:?} is not a model_name in model_list"
            ));
        }
    }
    let mut models = models;
    if let Some(t) = router.timeout {
        for (m, own) in models.iter_mut().zip(&own_timeout) {
            if !own {
                m.settings.timeouts.total = t;
            }
        }
    }
    let mut ids = std::collections::HashSet::new();
    for m in &models {
        if let Some(id) = &m.info.id
            && !ids.insert(id.as_str())
        {
            problems.push(format!(
                "model_list: model_info.id {id:?} is used twice; each deployment needs its own"
            ));
        }
    }

    observe.metrics |= server.metrics;
    observe.json_logs |= server.json_logs;
    if problems.is_empty() {
        Ok(Config {
            observe,
            models,
            master_key,
            database_url,
            redis_url,
            default_database: None,
            server,
            router,
            forward_headers,
            warnings,
        })
    } else {
        Err(ConfigError { problems })
    }
}

/// Reads what agentbridge uses of `litellm_settings`: `callbacks` (and `success_callback`,
/// `failure_callback`) naming `prometheus` or `otel`, `json_logs`, and
/// `model_group_settings.forward_client_headers_to_llm_api`. The router reads the rest (and
/// warns about what nothing uses).
fn read_litellm_settings(
    section: Option<&Value>,
    observe: &mut crate::observe::ObserveSettings,
    forward_headers: &mut ForwardHeaders,
    warnings: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let s = match section {
        None | Some(Value::Null) => return,
        Some(Value::Object(s)) => s,
        Some(_) => {
            problems.push("litellm_settings: expected a mapping".into());
            return;
        }
    };
    for (k, v) in s {
        match (k.as_str(), v) {
            ("callbacks" | "success_callback" | "failure_callback", Value::Array(names)) => {
                for n in names {
                    match n.as_str() {
                        Some("prometheus") => observe.metrics = true,
                        // LiteLLM's OpenTelemetry callback: traces over OTLP (the
                        // endpoint and protocol from the standard OTEL_* variables).
                        Some("otel") => observe.otel = true,
                        Some(other) => warnings.push(format!(
                            "litellm_settings.{k}: {other:?} is not a callback agentbridge has, ignored (it has \"prometheus\" and \"otel\")"
                        )),
                        None => problems.push(format!("litellm_settings.{k}: expected a list of names")),
                    }
                }
            }
            ("callbacks" | "success_callback" | "failure_callback", _) => {
                problems.push(format!("litellm_settings.{k}: expected a list of names"))
            }
            ("json_logs", Value::Bool(b)) => observe.json_logs = *b,
            ("json_logs", _) => {
                problems.push("litellm_settings.json_logs: expected true or false".into())
            }
            ("model_group_settings", Value::Object(m)) => {
                for (k, v) in m {
                    let at = format!("litellm_settings.model_group_settings.{k}");
                    match (k.as_str(), v) {
                        ("forward_client_headers_to_llm_api", Value::Array(names)) => {
                            for n in names {
                                match n.as_str() {
                                    Some(n) => forward_headers.models.push(n.to_string()),
                                    None => problems.push(format!(
                                        "{at}: expected a list of model names, got {n}"
                                    )),
                                }
                            }
                        }
                        ("forward_client_headers_to_llm_api", _) => {
                            problems.push(format!("{at}: expected a list of model names"))
                        }
                        _ => warnings.push(format!("{at}: not used by agentbridge, ignored")),
                    }
                }
            }
            ("model_group_settings", _) => {
                problems.push("litellm_settings.model_group_settings: expected a mapping".into())
            }
            // Everything else is the router's to read or to warn about.
            _ => {}
        }
    }
}

/// Replaces `os.environ/VAR` strings (at any depth) with the variable's value.
pub(crate) fn resolve_env(
    map: &mut Map<String, Value>,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (k, v) in map.iter_mut() {
        resolve_value(v, &format!("{at}.{k}"), env, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn resolve_value(
    v: &mut Value,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) {
    match v {
        Value::String(s) => {
            if let Some(var) = s.strip_prefix("os.environ/") {
                match env(var) {
                    Some(val) => *s = val,
                    None => problems.push(format!("{at}: environment variable {var} is not set (referenced as os.environ/{var})")),
                }
            }
        }
        Value::Object(m) => {
            for (k, inner) in m.iter_mut() {
                resolve_value(inner, &format!("{at}.{k}"), env, problems);
            }
        }
        Value::Array(a) => {
            for (i, inner) in a.iter_mut().enumerate() {
                resolve_value(inner, &format!("{at}[{i}]"), env, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
