//! The router's settings, read from LiteLLM's `router_settings` (and the same names in
//! `litellm_settings`, which `router_settings` overrides), and each deployment's routing facts
//! (`model_info.id`, `rpm`, `tpm`, `weight`).

use super::strategy::Strategy;
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::time::Duration;

/// Reads `litellm_settings` and `router_settings` of a config (after resolving
/// `os.environ/`); `models` are the config's deployments, for checking fallbacks.
pub fn read(
    root: &Map<String, Value>,
    models: &[crate::config::ModelEntry],
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> RouterSettings {
    let mut section = |name: &str| match root.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let mut m = m.clone();
            match crate::config::resolve_env(&mut m, name, env) {
                Ok(()) => Some(m),
                Err(e) => {
                    problems.extend(e);
                    None
                }
            }
        }
        Some(_) => {
            problems.push(format!("{name}: expected a mapping"));
            None
        }
    };
    let (litellm, router) = (section("litellm_settings"), section("router_settings"));
    let mut served: Vec<&str> = Vec::new();
    for m in models {
        if !served.contains(&m.name.as_str()) {
            served.push(&m.name);
        }
    }
    parse(
        litellm.as_ref(),
        router.as_ref(),
        &served,
        problems,
        warnings,
    )
}

/// Retries per error class (LiteLLM's `retry_policy`); `None` falls back to `num_retries`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryPolicy {
    /// `RateLimitErrorRetries`: throttling and quota errors.
    pub rate_limit: Option<u32>,
    /// `InternalServerErrorRetries`: 5xx answers and connection failures.
    pub internal_server: Option<u32>,
}

/// The router's settings.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// `routing_strategy` (default `simple-shuffle`).
    pub strategy: Strategy,
    /// `num_retries`: further deployments of the group tried after a failure the agent cannot
    /// have acted on (default 2).
    pub num_retries: u32,
    /// `retry_policy`.
    pub retry_policy: RetryPolicy,
    /// `allowed_fails`: failures in a minute a deployment may have before it cools down
    /// (default 3).
    pub allowed_fails: u32,
    /// `cooldown_time` (default 5 s).
    pub cooldown_time: Duration,
    /// `disable_cooldowns`.
    pub disable_cooldowns: bool,
    /// `timeout` (or `litellm_settings.request_timeout`): the whole-call timeout of
    /// deployments that set none.
    pub timeout: Option<Duration>,
    /// `fallbacks`: model group -> groups tried in order when the group fails.
    pub fallbacks: Vec<(String, Vec<String>)>,
    /// `default_fallbacks`: for groups with no entry in `fallbacks`.
    pub default_fallbacks: Vec<String>,
    /// `redis_url` (or `redis_host`/`redis_port`/`redis_password`); otherwise
    /// `general_settings.redis_url`: cooldowns and usage shared by every instance.
    pub redis_url: Option<SecretString>,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            strategy: Strategy::SimpleShuffle,
            num_retries: 2,
            retry_policy: RetryPolicy::default(),
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
            disable_cooldowns: false,
            timeout: None,
            fallbacks: Vec::new(),
            default_fallbacks: Vec::new(),
            redis_url: None,
        }
    }
}

impl RouterSettings {
    /// The groups tried after `model` fails, in order.
    pub fn fallbacks_of(&self, model: &str) -> &[String] {
        self.fallbacks
            .iter()
            .find(|(m, _)| m == model)
            .map(|(_, f)| f.as_slice())
            .unwrap_or(&self.default_fallbacks)
    }
}

/// One deployment's routing facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentInfo {
    /// `model_info.id`: the deployment's id (else `{model_name}/{index}`).
    pub id: Option<String>,
    /// `rpm`: requests per minute this deployment may take.
    pub rpm: Option<u64>,
    /// `tpm`: tokens per minute.
    pub tpm: Option<u64>,
    /// `weight`: share of fresh sessions under `simple-shuffle`.
    pub weight: Option<f64>,
}

/// Reads `model_info.id` and `rpm`/`tpm`/`weight` (in `litellm_params`, or beside it as
/// LiteLLM also accepts) of the model entry at `at`.
pub fn deployment_info(
    entry: &Map<String, Value>,
    params: &Map<String, Value>,
    at: &str,
    problems: &mut Vec<String>,
) -> DeploymentInfo {
    let mut info = DeploymentInfo::default();
    match entry.get("model_info") {
        None | Some(Value::Null) => {}
        Some(Value::Object(mi)) => match mi.get("id") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.is_empty() => info.id = Some(s.clone()),
            Some(Value::Number(n)) => info.id = Some(n.to_string()),
            Some(v) => problems.push(format!(
                "{at}.model_info.id: expected a non-empty string, got {v}"
            )),
        },
        Some(_) => problems.push(format!("{at}.model_info: expected a mapping")),
    }
    for (key, slot) in [("rpm", &mut info.rpm), ("tpm", &mut info.tpm)] {
        let (v, where_) = match params.get(key) {
            Some(v) => (v, "litellm_params."),
            None => match entry.get(key) {
                Some(v) => (v, ""),
                None => continue,
            },
        };
        match v.as_u64() {
            Some(n) if n > 0 => *slot = Some(n),
            _ if v.is_null() => {}
            _ => problems.push(format!(
                "{at}.{where_}{key}: expected a positive whole number, got {v}"
            )),
        }
    }
    if let Some(v) = params.get("weight").filter(|v| !v.is_null()) {
        match v.as_f64() {
            Some(w) if w > 0.0 && w.is_finite() => info.weight = Some(w),
            _ => problems.push(format!(
                "{at}.litellm_params.weight: expected a positive number, got {v}"
            )),
        }
    }
    info
}

/// Router keys of LiteLLM's that agentbridge accepts and does not use (warned about).
const UNUSED: &[&str] = &[
    "enable_pre_call_checks",
    "allowed_fails_policy",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "model_group_alias",
    "retry_after",
    "redis_db",
    "cache_responses",
    "optional_pre_call_checks",
    "provider_budget_config",
];

/// Reads the router's settings from `litellm_settings` then `router_settings` (both already
/// `os.environ/`-resolved). `served` are the model names, for checking fallbacks.
pub fn parse(
    litellm: Option<&Map<String, Value>>,
    router: Option<&Map<String, Value>>,
    served: &[&str],
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> RouterSettings {
    let mut s = RouterSettings::default();
    let (mut host, mut port, mut password) = (None, None, None);
    for (section, map) in [("litellm_settings", litellm), ("router_settings", router)] {
        let Some(map) = map else { continue };
        for (k, v) in map {
            let at = format!("{section}.{k}");
            let mut bad = |what: &str| problems.push(format!("{at}: expected {what}, got {v}"));
            match k.as_str() {
                "routing_strategy" => match v.as_str().map(Strategy::from_name) {
                    Some(Ok(st)) => s.strategy = st,
                    Some(Err(e)) => problems.push(format!("{at}: {e}")),
                    None => bad("a string"),
                },
                "routing_strategy_args" => {
                    if let Some(b) = v.get("lowest_latency_buffer") {
                        match b.as_f64() {
                            Some(b) if b >= 0.0 && b.is_finite() => s.strategy.set_buffer(b),
                            _ => bad("lowest_latency_buffer as a non-negative number"),
                        }
                    }
                }
                "num_retries" => match v.as_u64() {
                    Some(n) if n <= 10 => s.num_retries = n as u32,
                    _ => bad("a whole number from 0 to 10"),
                },
                "allowed_fails" => match v.as_u64() {
                    Some(n) => s.allowed_fails = n.min(u32::MAX as u64) as u32,
                    None => bad("a whole number"),
                },
                "cooldown_time" => match seconds(v) {
                    Some(d) => s.cooldown_time = d,
                    None => bad("a number of seconds"),
                },
                "disable_cooldowns" => match v.as_bool() {
                    Some(b) => s.disable_cooldowns = b,
                    None => bad("true or false"),
                },
                "timeout" | "request_timeout" => match seconds(v).filter(|d| !d.is_zero()) {
                    Some(d) => s.timeout = Some(d),
                    None => bad("a positive number of seconds"),
                },
                "retry_policy" => match v.as_object() {
                    Some(p) => retry_policy(p, &at, &mut s.retry_policy, problems, warnings),
                    None => bad("a mapping such as {RateLimitErrorRetries: 3}"),
                },
                "fallbacks" => s.fallbacks = fallbacks(v, &at, served, problems),
                "default_fallbacks" => match names(v) {
                    Some(list) => {
                        check_served(&list, &at, served, problems);
                        s.default_fallbacks = list;
                    }
                    None => bad("a list of model names"),
                },
                "redis_url" => match v.as_str() {
                    Some(u) => s.redis_url = Some(SecretString::from(u.to_string())),
                    None => bad("a string"),
                },
                "redis_host" => host = v.as_str().map(str::to_string),
                "redis_port" => port = v.as_u64().or_else(|| v.as_str()?.parse().ok()),
                "redis_password" => password = v.as_str().map(str::to_string),
                // Observability's (config.rs reads them).
                "callbacks"
                | "success_callback"
                | "failure_callback"
                | "json_logs"
                | "model_group_settings"
                    if section == "litellm_settings" => {}
                other if section == "router_settings" && UNUSED.contains(&other) => {
                    warnings.push(format!("{at}: not used by agentbridge, ignored"))
                }
                _ => warnings.push(format!("{at}: not used by agentbridge, ignored")),
            }
        }
    }
    if s.redis_url.is_none()
        && let Some(h) = host
    {
        let auth = password.map(|p| format!(":{p}@")).unwrap_or_default();
        let url = format!("redis://{auth}{h}:{}", port.unwrap_or(6379));
        s.redis_url = Some(SecretString::from(url));
    }
    s
}

fn seconds(v: &Value) -> Option<Duration> {
    let s = v.as_f64().or_else(|| v.as_str()?.parse().ok())?;
    (s >= 0.0 && s.is_finite() && s < 1e9).then(|| Duration::from_secs_f64(s))
}

fn names(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn check_served(list: &[String], at: &str, served: &[&str], problems: &mut Vec<String>) {
    for n in list {
        if !served.contains(&n.as_str()) {
            problems.push(format!(
                "{at}: {n:?} is not a model_name of model_list (served: {})",
                served.join(", ")
            ));
        }
    }
}

/// `[{"model-a": ["model-b", ...]}, ...]` (a single mapping is accepted too).
fn fallbacks(
    v: &Value,
    at: &str,
    served: &[&str],
    problems: &mut Vec<String>,
) -> Vec<(String, Vec<String>)> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        _ => {
            problems.push(format!(
                "{at}: expected a list such as [{{\"model-a\": [\"model-b\"]}}]"
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(m) = item.as_object() else {
            problems.push(format!(
                "{at}[{i}]: expected a mapping of a model name to a list"
            ));
            continue;
        };
        for (from, to) in m {
            let here = format!("{at}[{i}].{from}");
            check_served(std::slice::from_ref(from), &here, served, problems);
            match names(to) {
                Some(list) => {
                    check_served(&list, &here, served, problems);
                    out.push((from.clone(), list));
                }
                None => problems.push(format!("{here}: expected a list of model names")),
            }
        }
    }
    out
}

fn retry_policy(
    p: &Map<String, Value>,
    at: &str,
    policy: &mut RetryPolicy,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    for (k, v) in p {
        let n = match v.as_u64() {
            Some(n) if n <= 10 => n as u32,
            _ => {
                problems.push(format!(
                    "{at}.{k}: expected a whole number from 0 to 10, got {v}"
                ));
                continue;
            }
        };
        match k.as_str() {
            "RateLimitErrorRetries" => policy.rate_limit = Some(n),
            "InternalServerErrorRetries" => policy.internal_server = Some(n),
            // Never retried on another deployment: the agent may have acted (timeouts), or
            // another try cannot help (bad requests, credentials, guardrails).
            "TimeoutErrorRetries"
            | "BadRequestErrorRetries"
            | "AuthenticationErrorRetries"
            | "ContentPolicyViolationErrorRetries" => warnings.push(format!(
                "{at}.{k}: agentbridge never retries this class on another deployment, ignored"
            )),
            other => problems.push(format!(
                "{at}.{other}: unknown; expected RateLimitErrorRetries, InternalServerErrorRetries, TimeoutErrorRetries, BadRequestErrorRetries, AuthenticationErrorRetries or ContentPolicyViolationErrorRetries"
            )),
        }
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
