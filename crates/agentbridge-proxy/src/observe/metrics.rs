//! Prometheus metrics under LiteLLM's names, types, label names and latency buckets
//! (`litellm/integrations/prometheus.py`, `litellm/types/integrations/prometheus.py`), so
//! dashboards built for LiteLLM read them unchanged. Differences: docs/observability.md.
//!
//! Labels LiteLLM fills from teams, users and end users (which agentbridge does not have)
//! carry the value LiteLLM writes when they are unset: `None`. Every label value comes from
//! the config (model names, deployments), the key store (hashed keys, aliases) or a fixed set
//! (statuses, error classes): no session, request id or client-chosen string, so the number
//! of series stays bounded. Recording a request takes read locks only (one per family, after
//! its label set's first use).

use super::RequestRecord;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// LiteLLM's `LATENCY_BUCKETS` (seconds; `+Inf` is implied).
pub const LATENCY_BUCKETS: [f64; 35] = [
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0,
    240.0, 300.0,
];

/// A label value: shared, so the label sets of one request clone pointers, not strings.
type V = Arc<String>;

/// LiteLLM's value for an unset label.
const NONE: &str = "None";

/// `litellm_proxy_total_requests_metric`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyRequest {
    end_user: &'static str,
    hashed_api_key: V,
    api_key_alias: V,
    requested_model: V,
    team: &'static str,
    team_alias: &'static str,
    user: &'static str,
    status_code: V,
    user_email: &'static str,
    route: &'static str,
}

/// `litellm_proxy_failed_requests_metric`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyFailure {
    end_user: &'static str,
    hashed_api_key: V,
    api_key_alias: V,
    requested_model: V,
    team: &'static str,
    team_alias: &'static str,
    user: &'static str,
    exception_status: V,
    exception_class: V,
    route: &'static str,
}

/// Spend, tokens and the request and API latencies (`model` is the deployment's model).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyModel {
    end_user: &'static str,
    hashed_api_key: V,
    api_key_alias: V,
    model: V,
    team: &'static str,
    team_alias: &'static str,
    user: &'static str,
    requested_model: V,
}

/// `litellm_spend_metric` (LiteLLM's has no `requested_model`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Spend {
    end_user: &'static str,
    hashed_api_key: V,
    api_key_alias: V,
    model: V,
    team: &'static str,
    team_alias: &'static str,
    user: &'static str,
}

/// `litellm_llm_api_time_to_first_token_metric`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FirstToken {
    model: V,
    hashed_api_key: V,
    api_key_alias: V,
    team: &'static str,
    team_alias: &'static str,
}

/// `litellm_overhead_latency_metric`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Overhead {
    model_group: V,
    api_provider: V,
    api_base: &'static str,
    litellm_model_name: V,
    hashed_api_key: V,
    api_key_alias: V,
}

/// `litellm_deployment_{total_requests,success_responses}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Deployment {
    requested_model: V,
    litellm_model_name: V,
    model_id: V,
    api_base: &'static str,
    api_provider: V,
    hashed_api_key: V,
    api_key_alias: V,
    team: &'static str,
    team_alias: &'static str,
}

/// `litellm_deployment_failure_responses`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentFailure {
    requested_model: V,
    litellm_model_name: V,
    model_id: V,
    api_base: &'static str,
    api_provider: V,
    exception_status: V,
    exception_class: V,
    hashed_api_key: V,
    api_key_alias: V,
    team: &'static str,
    team_alias: &'static str,
}

/// The key budget gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Key {
    hashed_api_key: V,
    api_key_alias: V,
}

/// The remaining-limit gauges: key and the model name asked for.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyForModel {
    hashed_api_key: V,
    api_key_alias: V,
    model: V,
}

type Hist<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn hist<L: Clone + std::hash::Hash + Eq>() -> Hist<L> {
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

/// The registry and every metric in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `litellm_in_flight_requests`: requests being served now.
    pub in_flight: Gauge,
    proxy_total: Family<ProxyRequest, Counter>,
    proxy_failed: Family<ProxyFailure, Counter>,
    spend: Family<Spend, Counter<f64, AtomicU64>>,
    total_tokens: Family<KeyModel, Counter>,
    input_tokens: Family<KeyModel, Counter>,
    output_tokens: Family<KeyModel, Counter>,
    total_latency: Hist<KeyModel>,
    api_latency: Hist<KeyModel>,
    first_token: Hist<FirstToken>,
    overhead: Hist<Overhead>,
    remaining_budget: Family<Key, Gauge<f64, AtomicU64>>,
    max_budget: Family<Key, Gauge<f64, AtomicU64>>,
    remaining_requests: Family<KeyForModel, Gauge>,
    remaining_tokens: Family<KeyForModel, Gauge>,
    deployment_success: Family<Deployment, Counter>,
    deployment_failure: Family<DeploymentFailure, Counter>,
    deployment_total: Family<Deployment, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            in_flight: Gauge::default(),
            proxy_total: Family::default(),
            proxy_failed: Family::default(),
            spend: Family::default(),
            total_tokens: Family::default(),
            input_tokens: Family::default(),
            output_tokens: Family::default(),
            total_latency: hist(),
            api_latency: hist(),
            first_token: hist(),
            overhead: hist(),
            remaining_budget: Family::default(),
            max_budget: Family::default(),
            remaining_requests: Family::default(),
            remaining_tokens: Family::default(),
            deployment_success: Family::default(),
            deployment_failure: Family::default(),
            deployment_total: Family::default(),
        };
        let r = &mut m.registry;
        r.register("litellm_proxy_total_requests_metric", "Total number of requests made to the proxy server - track number of client side requests", m.proxy_total.clone());
        r.register("litellm_proxy_failed_requests_metric", "Total number of failed responses from proxy - the client did not get a success response from litellm proxy", m.proxy_failed.clone());
        r.register(
            "litellm_spend_metric",
            "Total spend on LLM requests",
            m.spend.clone(),
        );
        r.register(
            "litellm_total_tokens_metric",
            "Total number of input + output tokens from LLM requests",
            m.total_tokens.clone(),
        );
        r.register(
            "litellm_input_tokens_metric",
            "Total number of input tokens from LLM requests",
            m.input_tokens.clone(),
        );
        r.register(
            "litellm_output_tokens_metric",
            "Total number of output tokens from LLM requests",
            m.output_tokens.clone(),
        );
        r.register(
            "litellm_request_total_latency_metric",
            "Total latency (seconds) for a request to LiteLLM",
            m.total_latency.clone(),
        );
        r.register(
            "litellm_llm_api_latency_metric",
            "Total latency (seconds) for a models LLM API call",
            m.api_latency.clone(),
        );
        r.register(
            "litellm_llm_api_time_to_first_token_metric",
            "Time to first token for a models LLM API call",
            m.first_token.clone(),
        );
        r.register(
            "litellm_overhead_latency_metric",
            "Latency overhead (seconds) added by the gateway's processing",
            m.overhead.clone(),
        );
        r.register(
            "litellm_remaining_api_key_budget_metric",
            "Remaining budget for api key",
            m.remaining_budget.clone(),
        );
        r.register(
            "litellm_api_key_max_budget_metric",
            "Maximum budget set for api key",
            m.max_budget.clone(),
        );
        r.register(
            "litellm_remaining_api_key_requests_for_model",
            "Remaining Requests API Key can make for model (model based rpm limit on key)",
            m.remaining_requests.clone(),
        );
        r.register(
            "litellm_remaining_api_key_tokens_for_model",
            "Remaining Tokens API Key can make for model (model based tpm limit on key)",
            m.remaining_tokens.clone(),
        );
        r.register(
            "litellm_deployment_success_responses",
            "LLM Deployment Analytics - Total number of successful LLM API calls via litellm",
            m.deployment_success.clone(),
        );
        r.register("litellm_deployment_failure_responses", "LLM Deployment Analytics - Total number of failed LLM API calls for a specific LLM deploymeny. exception_status is the status of the exception from the llm api", m.deployment_failure.clone());
        r.register("litellm_deployment_total_requests", "LLM Deployment Analytics - Total number of LLM API calls via litellm - success + failure", m.deployment_total.clone());
        r.register(
            "litellm_in_flight_requests",
            "Requests being served now",
            m.in_flight.clone(),
        );
        m
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads as it reads LiteLLM's).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts one finished request.
    pub fn record(&self, rec: &RequestRecord) {
        let v = |o: &Option<String>| Arc::new(o.as_deref().unwrap_or(NONE).to_string());
        let key = v(&rec.hashed_key);
        let alias = v(&rec.key_alias);
        let requested = v(&rec.requested_model);
        let model = v(&rec.litellm_model);
        let status = Arc::new(rec.status.to_string());
        let ok = rec.error_class.is_none() && rec.status < 400;
        self.proxy_total
            .get_or_create(&ProxyRequest {
                end_user: NONE,
                hashed_api_key: key.clone(),
                api_key_alias: alias.clone(),
                requested_model: requested.clone(),
                team: NONE,
                team_alias: NONE,
                user: NONE,
                status_code: Arc::clone(&status),
                user_email: NONE,
                route: rec.route,
            })
            .inc();
        let class = v(&rec.error_class);
        if !ok {
            self.proxy_failed
                .get_or_create(&ProxyFailure {
                    end_user: NONE,
                    hashed_api_key: key.clone(),
                    api_key_alias: alias.clone(),
                    requested_model: requested.clone(),
                    team: NONE,
                    team_alias: NONE,
                    user: NONE,
                    exception_status: Arc::clone(&status),
                    exception_class: class.clone(),
                    route: rec.route,
                })
                .inc();
        }
        if let (Some(max), Some(spend)) = (rec.key_max_budget, rec.key_spend) {
            let k = Key {
                hashed_api_key: key.clone(),
                api_key_alias: alias.clone(),
            };
            self.max_budget.get_or_create(&k).set(max);
            self.remaining_budget.get_or_create(&k).set(max - spend);
        }
        let h = rec.key_headroom;
        if h.requests.is_some() || h.tokens.is_some() {
            let k = KeyForModel {
                hashed_api_key: key.clone(),
                api_key_alias: alias.clone(),
                model: requested.clone(),
            };
            if let Some(n) = h.requests {
                self.remaining_requests.get_or_create(&k).set(n);
            }
            if let Some(n) = h.tokens {
                self.remaining_tokens.get_or_create(&k).set(n);
            }
        }
        // Nothing below applies to a request refused before a deployment was chosen.
        let Some(model_id) = rec.deployment_id.clone().map(Arc::new) else {
            return;
        };
        let provider = Arc::new(rec.provider.unwrap_or(NONE).to_string());
        let km = KeyModel {
            end_user: NONE,
            hashed_api_key: key.clone(),
            api_key_alias: alias.clone(),
            model: model.clone(),
            team: NONE,
            team_alias: NONE,
            user: NONE,
            requested_model: requested.clone(),
        };
        if rec.cost > 0.0 {
            self.spend
                .get_or_create(&Spend {
                    end_user: NONE,
                    hashed_api_key: key.clone(),
                    api_key_alias: alias.clone(),
                    model: model.clone(),
                    team: NONE,
                    team_alias: NONE,
                    user: NONE,
                })
                .inc_by(rec.cost);
        }
        let tokens = rec.input_tokens + rec.output_tokens;
        if tokens > 0 {
            self.total_tokens.get_or_create(&km).inc_by(tokens);
            self.input_tokens
                .get_or_create(&km)
                .inc_by(rec.input_tokens);
            self.output_tokens
                .get_or_create(&km)
                .inc_by(rec.output_tokens);
        }
        self.total_latency.get_or_create(&km).observe(rec.latency);
        if let Some(api) = rec.api_latency {
            self.api_latency.get_or_create(&km).observe(api);
            self.overhead
                .get_or_create(&Overhead {
                    model_group: requested.clone(),
                    api_provider: provider.clone(),
                    api_base: NONE,
                    litellm_model_name: model.clone(),
                    hashed_api_key: key.clone(),
                    api_key_alias: alias.clone(),
                })
                .observe((rec.latency - api).max(0.0));
        }
        if let Some(t) = rec.time_to_first_token {
            self.first_token
                .get_or_create(&FirstToken {
                    model: model.clone(),
                    hashed_api_key: key.clone(),
                    api_key_alias: alias.clone(),
                    team: NONE,
                    team_alias: NONE,
                })
                .observe(t);
        }
        let d = Deployment {
            requested_model: requested,
            litellm_model_name: model,
            model_id,
            api_base: NONE,
            api_provider: provider,
            hashed_api_key: key,
            api_key_alias: alias,
            team: NONE,
            team_alias: NONE,
        };
        self.deployment_total.get_or_create(&d).inc();
        if ok {
            self.deployment_success.get_or_create(&d).inc();
        } else {
            self.deployment_failure
                .get_or_create(&DeploymentFailure {
                    requested_model: d.requested_model,
                    litellm_model_name: d.litellm_model_name,
                    model_id: d.model_id,
                    api_base: NONE,
                    api_provider: d.api_provider,
                    exception_status: Arc::clone(&status),
                    exception_class: class,
                    hashed_api_key: d.hashed_api_key,
                    api_key_alias: d.api_key_alias,
                    team: NONE,
                    team_alias: NONE,
                })
                .inc();
        }
    }
}
