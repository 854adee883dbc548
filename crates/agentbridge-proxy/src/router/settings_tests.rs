use crate::config::{LoadOptions, parse};
use crate::router::strategy::Strategy;
use secrecy::ExposeSecret;
use std::time::Duration;

fn env(k: &str) -> Option<String> {
    (k == "REDIS_HOST").then(|| "10.0.0.7".to_string())
}

const TWO_REGIONS: &str = "model_list:
  - model_name: agent
    litellm_params:
      model: bedrock/agent/AGENT1/ALIAS1
      aws_region_name: us-west-2
      rpm: 60
      weight: 3
    model_info:
      id: agent-west
  - model_name: agent
    litellm_params:
      model: bedrock/agent/AGENT1/ALIAS1
      aws_region_name: us-east-1
      timeout: 30
    tpm: 100000
  - model_name: backup
    litellm_params:
      model: bedrock/agent/AGENT2/ALIAS2
      aws_region_name: us-east-1
";

#[test]
fn litellm_router_settings_are_read() {
    let text = format!(
        "{TWO_REGIONS}router_settings:
  routing_strategy: latency-based-routing
  routing_strategy_args: {{lowest_latency_buffer: 0.5}}
  num_retries: 1
  allowed_fails: 2
  cooldown_time: 30
  timeout: 90
  retry_policy: {{RateLimitErrorRetries: 3, InternalServerErrorRetries: 0}}
  fallbacks: [{{agent: [backup]}}]
  redis_host: os.environ/REDIS_HOST
  redis_port: 6380
litellm_settings:
  default_fallbacks: [backup]
  num_retries: 5
"
    );
    let c = parse(&text, &env, LoadOptions::default()).unwrap();
    let r = &c.router;
    assert_eq!(r.strategy, Strategy::LatencyBased { buffer: 0.5 });
    assert_eq!(
        r.num_retries, 1,
        "router_settings override litellm_settings"
    );
    assert_eq!(
        (r.allowed_fails, r.cooldown_time),
        (2, Duration::from_secs(30))
    );
    assert_eq!(r.retry_policy.rate_limit, Some(3));
    assert_eq!(r.retry_policy.internal_server, Some(0));
    assert_eq!(r.fallbacks_of("agent"), ["backup".to_string()]);
    assert_eq!(
        r.fallbacks_of("backup"),
        ["backup".to_string()],
        "default_fallbacks"
    );
    assert_eq!(
        r.redis_url.as_ref().map(|u| u.expose_secret().to_string()),
        Some("redis://10.0.0.7:6380".into())
    );
    // `timeout` is the default of deployments that set none.
    assert_eq!(c.models[0].settings.timeouts.total, Duration::from_secs(90));
    assert_eq!(c.models[1].settings.timeouts.total, Duration::from_secs(30));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn deployment_routing_facts_are_read_and_never_sent_to_the_agent() {
    let c = parse(TWO_REGIONS, &env, LoadOptions::default()).unwrap();
    let (a, b) = (&c.models[0], &c.models[1]);
    assert_eq!(a.info.id.as_deref(), Some("agent-west"));
    assert_eq!((a.info.rpm, a.info.weight), (Some(60), Some(3.0)));
    assert_eq!(b.info.tpm, Some(100_000));
    assert!(
        a.settings.agent_params.is_empty(),
        "{:?}",
        a.settings.agent_params
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn router_problems_name_their_key() {
    let text = format!(
        "{TWO_REGIONS}router_settings:
  routing_strategy: cost-based-routing
  fallbacks: [{{agent: [nowhere]}}]
  retry_policy: {{RateLimitErrorRetriez: 1}}
  cooldown_time: soon
"
    );
    let e = parse(&text, &env, LoadOptions::default()).unwrap_err();
    for needle in [
        "router_settings.routing_strategy: \"cost-based-routing\" is not supported",
        "router_settings.fallbacks[0].agent: \"nowhere\" is not a model_name",
        "router_settings.retry_policy.RateLimitErrorRetriez: unknown",
        "router_settings.cooldown_time: expected a number of seconds",
    ] {
        assert!(
            e.problems.iter().any(|p| p.contains(needle)),
            "{needle} missing from {:?}",
            e.problems
        );
    }
    let dup = TWO_REGIONS.replace("    tpm: 100000\n", "    model_info: {id: agent-west}\n");
    let e = parse(&dup, &env, LoadOptions::default()).unwrap_err();
    assert!(
        e.problems.iter().any(|p| p.contains("used twice")),
        "{:?}",
        e.problems
    );
}
