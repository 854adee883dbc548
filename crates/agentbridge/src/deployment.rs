//! A deployment: one agent (a [`Target`]) with its endpoint, region, credentials, fixed agent
//! parameters, prices, timeouts and retries. Parsed from LiteLLM's `litellm_params` names.

use crate::canonical::{AgentRequest, Answer};
use crate::client::Client;
use crate::credentials::{AwsAuth, CredentialCache};
use crate::error::{Error, Result};
use crate::eventstream::DEFAULT_MAX_FRAME_BYTES;
use crate::params::is_deployment_param;
use crate::pricing::Price;
use crate::target::{self, Target};
use aws_config::Region;
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Upstream time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connect (`connect_timeout`, default 10 s).
    pub connect: Duration,
    /// Until the response headers and then between two events, the first included
    /// (`stream_timeout`, default 120 s).
    pub idle: Duration,
    /// The whole call (`timeout`, default 600 s).
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(600),
        }
    }
}

/// A problem with one deployment parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    /// The parameter's key.
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
}

/// A deployment's settings, parsed without I/O.
#[derive(Debug, Clone)]
pub struct DeploymentSettings {
    /// The agent: which service, which agent, and the settings of that service's own.
    pub target: Arc<dyn Target>,
    /// `aws_region_name`; otherwise `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile.
    pub region: Option<String>,
    /// `api_base` or `aws_bedrock_runtime_endpoint`; otherwise `AWS_BEDROCK_RUNTIME_ENDPOINT`
    /// from the environment, otherwise the regional AWS endpoint.
    pub endpoint: Option<String>,
    /// Credentials.
    pub auth: AwsAuth,
    /// Agent parameters sent on every call (e.g. `invocationId`).
    pub agent_params: Map<String, Value>,
    /// `input_cost_per_token` / `output_cost_per_token` (both or neither).
    pub price: Option<Price>,
    /// Time limits.
    pub timeouts: Timeouts,
    /// `num_retries` (default 2).
    pub num_retries: u32,
    /// `max_event_bytes`: cap on one event-stream frame.
    pub max_event_bytes: usize,
    /// `user_token_header`: a request header whose value is the end user's own OAuth token,
    /// sent to targets that take one (AgentCore Runtime) as `Authorization: Bearer`.
    pub user_token_header: Option<String>,
}

impl DeploymentSettings {
    /// Parses `litellm_params`. Returns every problem, each with its key.
    pub fn from_params(
        model: &str,
        params: &Map<String, Value>,
    ) -> std::result::Result<Self, Vec<ParamError>> {
        let mut errors = Vec::new();
        let mut err = |key: &str, message: String| {
            errors.push(ParamError {
                key: key.into(),
                message,
            })
        };
        let mut target_errors = Vec::new();
        let agent = target::parse(model, params, &mut target_errors);
        let string = |key: &str, err: &mut dyn FnMut(&str, String)| match params.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                err(key, format!("expected a string, got {other}"));
                None
            }
        };
        let secret =
            |key: &str, err: &mut dyn FnMut(&str, String)| string(key, err).map(SecretString::from);
        let seconds = |key: &str, default: Duration, err: &mut dyn FnMut(&str, String)| match params
            .get(key)
        {
            None | Some(Value::Null) => default,
            Some(v) => match v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                _ => {
                    err(
                        key,
                        format!("expected a positive number of seconds, got {v}"),
                    );
                    default
                }
            },
        };
        let number = |key: &str, err: &mut dyn FnMut(&str, String)| match params.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(n) if n >= 0.0 && n.is_finite() => Some(n),
                _ => {
                    err(key, format!("expected a non-negative number, got {v}"));
                    None
                }
            },
        };

        let auth = AwsAuth {
            access_key_id: secret("aws_access_key_id", &mut err),
            secret_access_key: secret("aws_secret_access_key", &mut err),
            session_token: secret("aws_session_token", &mut err),
            profile_name: string("aws_profile_name", &mut err),
            role_name: string("aws_role_name", &mut err),
            session_name: string("aws_session_name", &mut err),
            web_identity_token: secret("aws_web_identity_token", &mut err),
            external_id: string("aws_external_id", &mut err),
        };
        if auth.access_key_id.is_some() != auth.secret_access_key.is_some() {
            err(
                "aws_secret_access_key",
                "aws_access_key_id and aws_secret_access_key go together".into(),
            );
        }
        let endpoint = string("api_base", &mut err)
            .or_else(|| string("aws_bedrock_runtime_endpoint", &mut err));
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            err(
                "api_base",
                format!("expected an http:// or https:// URL, got {e:?}"),
            );
        }
        let region = string("aws_region_name", &mut err);
        let user_token_header =
            string("user_token_header", &mut err).map(|h| h.to_ascii_lowercase());
        if let Some(h) = &user_token_header
            && (h.is_empty()
                || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || ["authorization", "x-api-key", "x-litellm-api-key", "api-key"]
                    .contains(&h.as_str()))
        {
            err(
                "user_token_header",
                format!(
                    "expected an HTTP header name other than the gateway's own key headers, got {h:?}"
                ),
            );
        }
        let price = match (
            number("input_cost_per_token", &mut err),
            number("output_cost_per_token", &mut err),
        ) {
            (Some(input), Some(output)) => Some(Price { input, output }),
            (None, None) => None,
            _ => {
                err(
                    "output_cost_per_token",
                    "input_cost_per_token and output_cost_per_token go together".into(),
                );
                None
            }
        };
        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            connect: seconds("connect_timeout", defaults.connect, &mut err),
            idle: seconds("stream_timeout", defaults.idle, &mut err),
            total: seconds("timeout", defaults.total, &mut err),
        };
        let num_retries = match params
            .get("num_retries")
            .or_else(|| params.get("max_retries"))
        {
            None | Some(Value::Null) => 2,
            Some(v) => match v.as_u64() {
                Some(n) if n <= 10 => n as u32,
                _ => {
                    err(
                        "num_retries",
                        format!("expected a whole number from 0 to 10, got {v}"),
                    );
                    2
                }
            },
        };
        let max_event_bytes = match params.get("max_event_bytes") {
            None | Some(Value::Null) => DEFAULT_MAX_FRAME_BYTES,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1024 => n as usize,
                _ => {
                    err(
                        "max_event_bytes",
                        format!("expected a byte count of at least 1024, got {v}"),
                    );
                    DEFAULT_MAX_FRAME_BYTES
                }
            },
        };
        let agent_params: Map<String, Value> = params
            .iter()
            .filter(|(k, _)| {
                !is_deployment_param(k) && k.as_str() != "model" && k.as_str() != "connect_timeout"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        errors.extend(target_errors);
        match agent {
            Some(target) if errors.is_empty() => Ok(Self {
                target,
                region,
                endpoint,
                auth,
                agent_params,
                price,
                timeouts,
                num_retries,
                max_event_bytes,
                user_token_header,
            }),
            _ => Err(errors),
        }
    }
}

/// A ready deployment: settings plus resolved region, endpoint and credentials.
#[derive(Debug)]
pub struct Deployment {
    /// The settings it was made from.
    pub settings: DeploymentSettings,
    /// The region used for signing.
    pub region: String,
    /// Base URL, no trailing slash.
    pub endpoint: String,
    /// `host[:port]` of the endpoint, as sent and signed in the Host header.
    pub host: String,
    /// The credentials, cached and refreshed before they expire.
    pub credentials: Arc<CredentialCache>,
}

impl Deployment {
    /// What the server sees of `url` (this deployment's endpoint followed by a target's path
    /// and query): the endpoint's own path, if any, then the target's.
    pub fn request_target<'u>(&self, url: &'u str) -> &'u str {
        let start = url.find("://").map_or(0, |i| i + 3) + self.host.len();
        url.get(start..).unwrap_or(url)
    }

    /// Resolves region, endpoint and the credentials provider.
    pub async fn new(settings: DeploymentSettings) -> Result<Self> {
        let region = match settings.region.as_deref().or(settings.target.region()) {
            Some(r) => r.to_string(),
            None => crate::aws_http::default_region()
                .await
                .map(|r| r.to_string())
                .ok_or_else(|| {
                    Error::Credentials(
                        "no AWS region: set aws_region_name, or AWS_REGION in the environment"
                            .into(),
                    )
                })?,
        };
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| {
                std::env::var("AWS_BEDROCK_RUNTIME_ENDPOINT")
                    .ok()
                    .filter(|e| !e.is_empty())
            })
            .unwrap_or_else(|| settings.target.default_endpoint(&region))
            .trim_end_matches('/')
            .to_string();
        let credentials = CredentialCache::new(&settings.auth, Region::new(region.clone())).await?;
        Ok(Self {
            settings,
            region,
            host: host_of(&endpoint),
            endpoint,
            credentials,
        })
    }

    /// Sends `req` to this deployment's agent and returns its answer.
    pub async fn invoke(&self, http: &Client, req: &AgentRequest) -> Result<Answer> {
        self.settings.target.invoke(self, http, req).await
    }
}

fn host_of(endpoint: &str) -> String {
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_taken_from_the_endpoint() {
        assert_eq!(
            host_of("https://bedrock-agent-runtime.us-west-2.amazonaws.com"),
            "bedrock-agent-runtime.us-west-2.amazonaws.com"
        );
        assert_eq!(host_of("http://127.0.0.1:9001/"), "127.0.0.1:9001");
    }
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn litellm_params_are_read_and_extras_kept_for_the_agent() {
        let s = DeploymentSettings::from_params(
            "bedrock/agent/L1RT58GYRW/MFPSBCXYTW",
            &params(json!({"model": "bedrock/agent/L1RT58GYRW/MFPSBCXYTW", "aws_access_key_id": "AK",
                "aws_secret_access_key": "SK", "aws_region_name": "us-west-2", "invocationId": "my-test-invocation-id",
                "api_base": "http://127.0.0.1:9001", "timeout": 30, "stream_timeout": "5", "num_retries": 0,
                "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002})),
        )
        .unwrap();
        assert_eq!(s.region.as_deref(), Some("us-west-2"));
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9001"));
        assert_eq!(
            s.agent_params,
            params(json!({"invocationId": "my-test-invocation-id"}))
        );
        assert_eq!(s.timeouts.total, Duration::from_secs(30));
        assert_eq!(s.timeouts.idle, Duration::from_secs(5));
        assert_eq!(s.num_retries, 0);
        assert_eq!(
            s.price,
            Some(Price {
                input: 0.000001,
                output: 0.000002
            })
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let errs = DeploymentSettings::from_params(
            "bedrock/agent/bad-id/X",
            &params(json!({"aws_access_key_id": "AK", "timeout": -1, "api_base": "ftp://x", "num_retries": "many",
                "input_cost_per_token": 1})),
        )
        .unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "model",
            "aws_secret_access_key",
            "timeout",
            "api_base",
            "num_retries",
            "output_cost_per_token",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
    }
}
