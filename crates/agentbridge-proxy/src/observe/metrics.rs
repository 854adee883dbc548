//! Prometheus metrics under LiteLLM's names, types, label names and latency buckets
//! (`litellm/integrations/prometheus.py`, `litellm/types/integrations/prometheus.py`), so
//! dashboards built for LiteLLM read them unchanged. Differences: docs/observability.md.
//!
//! Labels LiteLLM fills from teams, users and end users (which agentbridge does not have)
//! carry the value LiteLLM writes when they are unset: `None`. Every label value comes from
//! the config (model names, deployments), the key store (hashed keys, aliases) or a fixed set
//! (statuses, error classes): no session, request id or client-chosen string, so the number
//! of series stays bounded. Recording a request seen before (same label values) takes no
//! lock but the histograms' own: each worker thread caches the handles of its label sets.

use super::RequestRecord;
use foldhash::fast::FixedState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// This registry's identity in the per-thread handle cache.
    id: u64,
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
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
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
    ///
    /// The series a request updates depend only on its label values (key, models,
    /// deployment, status, route, error class), so each worker thread keeps the handles of
    /// the label sets it has seen ([`Series`]): a request seen before costs one hash of its
    /// label values and atomic adds, instead of a family lookup (a read lock and a SipHash
    /// of eight to eleven labels) and a few `Arc<String>`s per metric.
    pub fn record(&self, rec: &RequestRecord) {
        let hash = shape_hash(rec);
        CACHE.with_borrow_mut(|cache| {
            if cache.owner != self.id || cache.series.len() >= CACHE_CAP {
                cache.owner = self.id;
                cache.series.clear();
            }
            let series = match cache.series.entry(hash) {
                Entry::Occupied(e) if e.get().labels.matches(rec) => e.into_mut(),
                Entry::Occupied(mut e) => {
                    // Two shapes with one hash: the newer one takes the slot.
                    e.insert(Series::new(self, rec));
                    e.into_mut()
                }
                Entry::Vacant(e) => e.insert(Series::new(self, rec)),
            };
            series.record(self, rec);
        });
    }
}

/// Label sets cached per worker thread before the cache starts over (a bound: the shapes a
/// gateway sees are keys x deployments x statuses, normally far fewer).
const CACHE_CAP: usize = 4096;

/// Gives each [`Metrics`] its own cache identity (tests make several in one thread).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

struct Cache {
    /// The [`Metrics`] whose handles `series` holds.
    owner: u64,
    series: HashMap<u64, Series, FixedState>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        owner: u64::MAX,
        series: HashMap::with_hasher(FixedState::default()),
    });
}

/// A hash of what decides which series a request updates (its label values).
fn shape_hash(rec: &RequestRecord) -> u64 {
    FixedState::default().hash_one((
        rec.hashed_key.as_deref(),
        rec.key_alias.as_deref(),
        rec.requested_model.as_deref(),
        rec.litellm_model.as_deref(),
        rec.deployment_id.as_deref(),
        rec.provider,
        rec.status,
        rec.route,
        rec.error_class.as_deref(),
    ))
}

/// A request shape's label values, shared by the label sets made from them.
struct Labels {
    key: V,
    alias: V,
    requested: V,
    model: V,
    /// `None` for a request refused before a deployment was chosen.
    model_id: Option<V>,
    provider: V,
    status: V,
    status_code: u16,
    route: &'static str,
    class: V,
    has_class: bool,
}

fn label(o: &Option<String>) -> V {
    Arc::new(o.as_deref().unwrap_or(NONE).to_string())
}

fn same(v: &V, o: Option<&str>) -> bool {
    v.as_str() == o.unwrap_or(NONE)
}

impl Labels {
    fn new(rec: &RequestRecord) -> Self {
        Self {
            key: label(&rec.hashed_key),
            alias: label(&rec.key_alias),
            requested: label(&rec.requested_model),
            model: label(&rec.litellm_model),
            model_id: rec.deployment_id.clone().map(Arc::new),
            provider: Arc::new(rec.provider.unwrap_or(NONE).to_string()),
            status: Arc::new(rec.status.to_string()),
            status_code: rec.status,
            route: rec.route,
            class: label(&rec.error_class),
            has_class: rec.error_class.is_some(),
        }
    }

    /// A success: no error class and a status below 400.
    fn ok(&self) -> bool {
        !self.has_class && self.status_code < 400
    }

    /// Whether `rec` has these label values (`None` and `"None"` are one label value, so
    /// they are one shape too).
    fn matches(&self, rec: &RequestRecord) -> bool {
        self.status_code == rec.status
            && self.route == rec.route
            && self.has_class == rec.error_class.is_some()
            && same(&self.key, rec.hashed_key.as_deref())
            && same(&self.alias, rec.key_alias.as_deref())
            && same(&self.requested, rec.requested_model.as_deref())
            && same(&self.model, rec.litellm_model.as_deref())
            && same(&self.provider, rec.provider)
            && same(&self.class, rec.error_class.as_deref())
            && match (&self.model_id, &rec.deployment_id) {
                (Some(a), Some(b)) => a.as_str() == b,
                (None, None) => true,
                _ => false,
            }
    }

    fn key(&self) -> Key {
        Key {
            hashed_api_key: self.key.clone(),
            api_key_alias: self.alias.clone(),
        }
    }

    fn key_model(&self) -> KeyModel {
        KeyModel {
            end_user: NONE,
            hashed_api_key: self.key.clone(),
            api_key_alias: self.alias.clone(),
            model: self.model.clone(),
            team: NONE,
            team_alias: NONE,
            user: NONE,
            requested_model: self.requested.clone(),
        }
    }
}

/// One request shape's series: the handles (shared atomics and histograms) its label sets
/// resolve to. A series is made in its family only when a request first updates it, as the
/// uncached lookups did (a request with no tokens adds no token series).
struct Series {
    labels: Labels,
    proxy_total: Counter,
    proxy_failed: Option<Counter>,
    max_budget: OnceCell<Gauge<f64, AtomicU64>>,
    remaining_budget: OnceCell<Gauge<f64, AtomicU64>>,
    remaining_requests: OnceCell<Gauge>,
    remaining_tokens: OnceCell<Gauge>,
    /// For a request that reached a deployment.
    deployment: Option<DeploymentSeries>,
}

struct DeploymentSeries {
    spend: OnceCell<Counter<f64, AtomicU64>>,
    total_tokens: OnceCell<Counter>,
    input_tokens: OnceCell<Counter>,
    output_tokens: OnceCell<Counter>,
    total_latency: Histogram,
    api_latency: OnceCell<Histogram>,
    overhead: OnceCell<Histogram>,
    first_token: OnceCell<Histogram>,
    total: Counter,
    /// `litellm_deployment_success_responses` or `_failure_responses`, by the shape's status.
    outcome: Counter,
}

impl Series {
    fn new(m: &Metrics, rec: &RequestRecord) -> Self {
        let l = Labels::new(rec);
        let proxy_total = m.proxy_total.get_or_create_owned(&ProxyRequest {
            end_user: NONE,
            hashed_api_key: l.key.clone(),
            api_key_alias: l.alias.clone(),
            requested_model: l.requested.clone(),
            team: NONE,
            team_alias: NONE,
            user: NONE,
            status_code: l.status.clone(),
            user_email: NONE,
            route: l.route,
        });
        let proxy_failed = (!l.ok()).then(|| {
            m.proxy_failed.get_or_create_owned(&ProxyFailure {
                end_user: NONE,
                hashed_api_key: l.key.clone(),
                api_key_alias: l.alias.clone(),
                requested_model: l.requested.clone(),
                team: NONE,
                team_alias: NONE,
                user: NONE,
                exception_status: l.status.clone(),
                exception_class: l.class.clone(),
                route: l.route,
            })
        });
        let deployment = l.model_id.clone().map(|model_id| {
            let d = Deployment {
                requested_model: l.requested.clone(),
                litellm_model_name: l.model.clone(),
                model_id,
                api_base: NONE,
                api_provider: l.provider.clone(),
                hashed_api_key: l.key.clone(),
                api_key_alias: l.alias.clone(),
                team: NONE,
                team_alias: NONE,
            };
            let total = m.deployment_total.get_or_create_owned(&d);
            let outcome = if l.ok() {
                m.deployment_success.get_or_create_owned(&d)
            } else {
                m.deployment_failure
                    .get_or_create_owned(&DeploymentFailure {
                        requested_model: d.requested_model,
                        litellm_model_name: d.litellm_model_name,
                        model_id: d.model_id,
                        api_base: NONE,
                        api_provider: d.api_provider,
                        exception_status: l.status.clone(),
                        exception_class: l.class.clone(),
                        hashed_api_key: d.hashed_api_key,
                        api_key_alias: d.api_key_alias,
                        team: NONE,
                        team_alias: NONE,
                    })
            };
            DeploymentSeries {
                spend: OnceCell::new(),
                total_tokens: OnceCell::new(),
                input_tokens: OnceCell::new(),
                output_tokens: OnceCell::new(),
                total_latency: m.total_latency.get_or_create_owned(&l.key_model()),
                api_latency: OnceCell::new(),
                overhead: OnceCell::new(),
                first_token: OnceCell::new(),
                total,
                outcome,
            }
        });
        Self {
            labels: l,
            proxy_total,
            proxy_failed,
            max_budget: OnceCell::new(),
            remaining_budget: OnceCell::new(),
            remaining_requests: OnceCell::new(),
            remaining_tokens: OnceCell::new(),
            deployment,
        }
    }

    fn record(&self, m: &Metrics, rec: &RequestRecord) {
        let l = &self.labels;
        self.proxy_total.inc();
        if let Some(c) = &self.proxy_failed {
            c.inc();
        }
        if let (Some(max), Some(spend)) = (rec.key_max_budget, rec.key_spend) {
            self.max_budget
                .get_or_init(|| m.max_budget.get_or_create_owned(&l.key()))
                .set(max);
            self.remaining_budget
                .get_or_init(|| m.remaining_budget.get_or_create_owned(&l.key()))
                .set(max - spend);
        }
        let h = rec.key_headroom;
        let key_for_model = || KeyForModel {
            hashed_api_key: l.key.clone(),
            api_key_alias: l.alias.clone(),
            model: l.requested.clone(),
        };
        if let Some(n) = h.requests {
            self.remaining_requests
                .get_or_init(|| m.remaining_requests.get_or_create_owned(&key_for_model()))
                .set(n);
        }
        if let Some(n) = h.tokens {
            self.remaining_tokens
                .get_or_init(|| m.remaining_tokens.get_or_create_owned(&key_for_model()))
                .set(n);
        }
        // Nothing below applies to a request refused before a deployment was chosen.
        let Some(d) = &self.deployment else {
            return;
        };
        if rec.cost > 0.0 {
            d.spend
                .get_or_init(|| {
                    m.spend.get_or_create_owned(&Spend {
                        end_user: NONE,
                        hashed_api_key: l.key.clone(),
                        api_key_alias: l.alias.clone(),
                        model: l.model.clone(),
                        team: NONE,
                        team_alias: NONE,
                        user: NONE,
                    })
                })
                .inc_by(rec.cost);
        }
        let tokens = rec.input_tokens + rec.output_tokens;
        if tokens > 0 {
            d.total_tokens
                .get_or_init(|| m.total_tokens.get_or_create_owned(&l.key_model()))
                .inc_by(tokens);
            d.input_tokens
                .get_or_init(|| m.input_tokens.get_or_create_owned(&l.key_model()))
                .inc_by(rec.input_tokens);
            d.output_tokens
                .get_or_init(|| m.output_tokens.get_or_create_owned(&l.key_model()))
                .inc_by(rec.output_tokens);
        }
        d.total_latency.observe(rec.latency);
        if let Some(api) = rec.api_latency {
            d.api_latency
                .get_or_init(|| m.api_latency.get_or_create_owned(&l.key_model()))
                .observe(api);
            d.overhead
                .get_or_init(|| {
                    m.overhead.get_or_create_owned(&Overhead {
                        model_group: l.requested.clone(),
                        api_provider: l.provider.clone(),
                        api_base: NONE,
                        litellm_model_name: l.model.clone(),
                        hashed_api_key: l.key.clone(),
                        api_key_alias: l.alias.clone(),
                    })
                })
                .observe((rec.latency - api).max(0.0));
        }
        if let Some(t) = rec.time_to_first_token {
            d.first_token
                .get_or_init(|| {
                    m.first_token.get_or_create_owned(&FirstToken {
                        model: l.model.clone(),
                        hashed_api_key: l.key.clone(),
                        api_key_alias: l.alias.clone(),
                        team: NONE,
                        team_alias: NONE,
                    })
                })
                .observe(t);
        }
        d.total.inc();
        d.outcome.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: u16, tokens: u64) -> RequestRecord {
        RequestRecord {
            time: 0.0,
            request_id: "r".into(),
            door: "chat",
            route: "/chat/completions",
            requested_model: Some("agent-a".into()),
            deployment_id: Some("agent-a/0".into()),
            litellm_model: Some("bedrock/agent/A/B".into()),
            provider: Some("bedrock"),
            key_alias: Some("team-key".into()),
            hashed_key: Some(
                "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b".into(),
            ),
            status,
            latency: 0.2,
            api_latency: Some(0.15),
            time_to_first_token: None,
            input_tokens: tokens,
            output_tokens: tokens,
            cost: 0.0,
            session: Some("never-a-label".into()),
            stream: false,
            error_class: (status >= 400).then(|| "throttled".to_string()),
            key_spend: None,
            key_max_budget: None,
            key_headroom: crate::keys::Headroom::default(),
        }
    }

    /// The exposition's line for `name` whose labels contain every one of `labels`.
    fn value(m: &Metrics, name: &str, labels: &[&str]) -> Option<f64> {
        m.encode()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| labels.iter().all(|x| l.contains(x)))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn a_repeated_shape_counts_every_request() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.record(&rec(200, 5));
        }
        for (name, labels, want) in [
            (
                "litellm_proxy_total_requests_metric_total",
                &["status_code=\"200\""][..],
                3.0,
            ),
            ("litellm_deployment_total_requests_total", &[], 3.0),
            ("litellm_deployment_success_responses_total", &[], 3.0),
            ("litellm_total_tokens_metric_total", &[], 30.0),
            ("litellm_request_total_latency_metric_count", &[], 3.0),
            ("litellm_overhead_latency_metric_count", &[], 3.0),
        ] {
            assert_eq!(value(&m, name, labels), Some(want), "{name}");
        }
        assert!(!m.encode().contains("never-a-label"));
    }

    #[test]
    fn shapes_that_differ_in_one_label_are_separate_series() {
        let m = Metrics::new();
        m.record(&rec(200, 1));
        m.record(&rec(429, 0));
        m.record(&rec(429, 0));
        let mut other = rec(200, 1);
        other.deployment_id = Some("agent-a/1".into());
        m.record(&other);
        let total = "litellm_proxy_total_requests_metric_total";
        assert_eq!(value(&m, total, &["status_code=\"200\""]), Some(2.0));
        assert_eq!(value(&m, total, &["status_code=\"429\""]), Some(2.0));
        let failed = "litellm_proxy_failed_requests_metric_total";
        assert_eq!(value(&m, failed, &["exception_status=\"429\""]), Some(2.0));
        assert_eq!(value(&m, failed, &["exception_status=\"200\""]), None);
        let dep = "litellm_deployment_total_requests_total";
        assert_eq!(value(&m, dep, &["model_id=\"agent-a/0\""]), Some(3.0));
        assert_eq!(value(&m, dep, &["model_id=\"agent-a/1\""]), Some(1.0));
        let failures = "litellm_deployment_failure_responses_total";
        assert_eq!(
            value(&m, failures, &["exception_class=\"throttled\""]),
            Some(2.0)
        );
    }

    #[test]
    fn a_series_appears_only_once_a_request_updates_it() {
        let m = Metrics::new();
        m.record(&rec(200, 0));
        assert_eq!(value(&m, "litellm_total_tokens_metric_total", &[]), None);
        assert_eq!(
            value(&m, "litellm_llm_api_time_to_first_token_metric_count", &[]),
            None
        );
        // Same shape, now with tokens and a first token: the cached shape makes them.
        let mut r = rec(200, 4);
        r.time_to_first_token = Some(0.05);
        m.record(&r);
        assert_eq!(
            value(&m, "litellm_total_tokens_metric_total", &[]),
            Some(8.0)
        );
        assert_eq!(
            value(&m, "litellm_llm_api_time_to_first_token_metric_count", &[]),
            Some(1.0)
        );
    }

    #[test]
    fn two_registries_in_one_thread_keep_their_own_counts() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.record(&rec(200, 1));
        b.record(&rec(200, 1));
        a.record(&rec(200, 1));
        let total = "litellm_proxy_total_requests_metric_total";
        assert_eq!(value(&a, total, &[]), Some(2.0));
        assert_eq!(value(&b, total, &[]), Some(1.0));
    }

    #[test]
    fn an_unset_label_and_the_string_none_are_one_series() {
        let m = Metrics::new();
        let mut unset = rec(200, 0);
        unset.key_alias = None;
        let mut named = rec(200, 0);
        named.key_alias = Some(NONE.into());
        m.record(&unset);
        m.record(&named);
        let total = "litellm_proxy_total_requests_metric_total";
        assert_eq!(value(&m, total, &["api_key_alias=\"None\""]), Some(2.0));
    }
}
