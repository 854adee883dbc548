use super::*;
use secrecy::ExposeSecret;

const DOCS_CONFIG: &str = "model_list:
  - model_name: bedrock-agent-1
    litellm_params:
      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
      aws_region_name: us-west-2
  - model_name: bedrock-agent-2  
    litellm_params:
      model: bedrock/agent/AGENT456/ALIAS789
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
      aws_region_name: us-east-1
";

fn env(k: &str) -> Option<String> {
    match k {
        "AWS_ACCESS_KEY_ID" => Some("AKIDTEST".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
        "MASTER" => Some("a-very-long-random-master-key".into()),
        _ => None,
    }
}

#[test]
fn the_litellm_docs_config_loads_unchanged() {
    let c = parse(DOCS_CONFIG, &env, LoadOptions::default()).unwrap();
    assert_eq!(c.models.len(), 2);
    assert_eq!(c.models[0].name, "bedrock-agent-1");
    assert_eq!(
        c.models[1].settings.target.model(),
        "bedrock/agent/AGENT456/ALIAS789"
    );
    assert_eq!(c.models[1].settings.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        c.models[0]
            .settings
            .auth
            .access_key_id
            .as_ref()
            .map(|s| s.expose_secret().to_string()),
        Some("AKIDTEST".into())
    );
    assert!(c.master_key.is_none());
}

#[test]
fn extra_params_and_master_key_from_env() {
    let text = format!(
        "{DOCS_CONFIG}      invocationId: my-test-invocation-id\ngeneral_settings:\n  master_key: os.environ/MASTER\n"
    );
    let c = parse(&text, &env, LoadOptions::default()).unwrap();
    assert_eq!(
        c.models[1].settings.agent_params["invocationId"],
        "my-test-invocation-id"
    );
    assert_eq!(
        c.master_key
            .map(|k| k.expose_secret().to_string())
            .as_deref(),
        Some("a-very-long-random-master-key")
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = "model_list:
  - model_name: a
    litellm_params:
      model: bedrock/agent/not-valid/X
  - model_name: b
    litellm_params:
      model: bedrock/agent/A/B
      aws_access_key_id: os.environ/NOPE_UNSET
  - litellm_params: {model: bedrock/agent/A/B}
general_settings:
  master_key: sk-1234
agentbridge:
  max_body_byte: 3
";
    let e = parse(text, &env, LoadOptions::default()).unwrap_err();
    let all = e.problems.join("\n");
    for needle in [
        "model_list[0].litellm_params.model:",
        "model_list[1].litellm_params.aws_access_key_id: environment variable NOPE_UNSET is not set",
        "model_list[2].model_name: required",
        "general_settings.master_key: is 7 characters",
        "agentbridge.",
        "max_body_byte",
    ] {
        assert!(all.contains(needle), "{needle:?} not in:\n{all}");
    }
}

#[test]
fn bad_yaml_and_missing_model_list_are_errors() {
    assert!(
        parse("model_list: [", &env, LoadOptions::default())
            .unwrap_err()
            .problems[0]
            .starts_with("YAML")
    );
    assert!(
        parse("general_settings: {}", &env, LoadOptions::default())
            .unwrap_err()
            .problems[0]
            .contains("model_list: required")
    );
}

#[test]
fn weak_master_keys_are_refused_unless_allowed() {
    let text = format!("{DOCS_CONFIG}general_settings:\n  master_key: your-litellm-api-key\n");
    let e = parse(&text, &env, LoadOptions::default()).unwrap_err();
    assert!(e.problems[0].contains("well-known sample"), "{e}");
    assert!(
        parse(
            &text,
            &env,
            LoadOptions {
                allow_weak_master_key: true
            }
        )
        .is_ok()
    );
}

#[test]
fn unknown_litellm_keys_warn() {
    let text = format!(
        "{DOCS_CONFIG}litellm_settings:\n  drop_params: true\ngeneral_settings:\n  alerting: [slack]\n"
    );
    let c = parse(&text, &env, LoadOptions::default()).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("litellm_settings")));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("general_settings.alerting"))
    );
}

#[test]
fn server_settings_are_read_with_defaults_for_the_rest() {
    let text = format!("{DOCS_CONFIG}agentbridge:\n  workers: 3\n  max_concurrent_requests: 10\n");
    let c = parse(&text, &env, LoadOptions::default()).unwrap();
    assert_eq!(c.server.workers, 3);
    assert_eq!(c.server.max_concurrent_requests, 10);
    assert_eq!(c.server.shutdown_grace_secs, 30.0);
    assert_eq!(
        parse(DOCS_CONFIG, &env, LoadOptions::default())
            .unwrap()
            .server
            .workers,
        0
    );
    let bad = format!("{DOCS_CONFIG}agentbridge:\n  workers: many\n");
    let e = parse(&bad, &env, LoadOptions::default()).unwrap_err();
    assert!(e.problems[0].starts_with("agentbridge.workers"), "{e}");
}

#[test]
fn redis_outage_policy_is_per_instance_unless_set_to_refuse() {
    use crate::config::RedisOutage;
    let default = parse(DOCS_CONFIG, &env, LoadOptions::default()).unwrap();
    assert_eq!(default.server.redis_outage, RedisOutage::PerInstance);
    let text = format!("{DOCS_CONFIG}agentbridge:\n  redis_outage: refuse\n");
    let c = parse(&text, &env, LoadOptions::default()).unwrap();
    assert_eq!(c.server.redis_outage, RedisOutage::Refuse);
    let bad = format!("{DOCS_CONFIG}agentbridge:\n  redis_outage: ignore\n");
    let e = parse(&bad, &env, LoadOptions::default()).unwrap_err();
    assert!(e.problems[0].starts_with("agentbridge.redis_outage"), "{e}");
    assert!(e.problems[0].contains("per_instance"), "{e}");
}

#[test]
fn observability_is_turned_on_as_in_litellm_or_in_the_agentbridge_section() {
    let off = parse(DOCS_CONFIG, &env, LoadOptions::default()).unwrap();
    assert_eq!(off.observe, crate::observe::ObserveSettings::default());
    let litellm = format!(
        "{DOCS_CONFIG}litellm_settings:\n  callbacks: [\"prometheus\", \"langfuse\"]\n  json_logs: true\ngeneral_settings:\n  require_auth_for_metrics_endpoint: true\n"
    );
    let c = parse(&litellm, &env, LoadOptions::default()).unwrap();
    assert!(c.observe.metrics && c.observe.json_logs && c.observe.metrics_require_auth);
    assert!(
        c.warnings.iter().any(|w| w.contains("\"langfuse\"")),
        "{:?}",
        c.warnings
    );
    let ours = format!("{DOCS_CONFIG}agentbridge:\n  metrics: true\n  json_logs: true\n");
    let c = parse(&ours, &env, LoadOptions::default()).unwrap();
    assert!(c.observe.metrics && c.observe.json_logs && !c.observe.metrics_require_auth);
    assert!(!c.observe.otel);
    let otel = format!("{DOCS_CONFIG}litellm_settings:\n  success_callback: [\"otel\"]\n");
    let c = parse(&otel, &env, LoadOptions::default()).unwrap();
    assert!(c.observe.otel && !c.observe.metrics);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let bad = format!("{DOCS_CONFIG}litellm_settings:\n  callbacks: prometheus\n");
    let e = parse(&bad, &env, LoadOptions::default()).unwrap_err();
    assert!(e.problems[0].contains("litellm_settings.callbacks"), "{e}");
}

#[test]
fn the_request_log_keeps_30_days_and_ui_sessions_last_8_hours_unless_set() {
    let default = parse(DOCS_CONFIG, &env, LoadOptions::default()).unwrap();
    assert_eq!(default.server.request_log_retention_days, 30.0);
    assert_eq!(default.server.ui_session_hours, 8.0);
    let text = format!(
        "{DOCS_CONFIG}agentbridge:\n  request_log_retention_days: 7\n  ui_session_hours: 1.5\n"
    );
    let c = parse(&text, &env, LoadOptions::default()).unwrap();
    assert_eq!(c.server.request_log_retention_days, 7.0);
    assert_eq!(c.server.ui_session_hours, 1.5);
    let bad = format!("{DOCS_CONFIG}agentbridge:\n  request_log_retention_days: 0\n");
    let e = parse(&bad, &env, LoadOptions::default()).unwrap_err();
    assert!(
        e.problems[0].starts_with("agentbridge.request_log_retention_days"),
        "{e}"
    );
}

#[test]
fn the_request_log_is_off_by_litellms_disable_spend_logs_or_our_own_setting() {
    assert!(
        parse(DOCS_CONFIG, &env, LoadOptions::default())
            .unwrap()
            .server
            .request_log
    );
    for (text, on) in [
        ("general_settings:\n  disable_spend_logs: true\n", false),
        ("general_settings:\n  disable_spend_logs: false\n", true),
        ("agentbridge:\n  request_log: false\n", false),
    ] {
        let c = parse(
            &format!("{DOCS_CONFIG}{text}"),
            &env,
            LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(c.server.request_log, on, "{text}");
    }
    let bad = format!("{DOCS_CONFIG}general_settings:\n  disable_spend_logs: yes please\n");
    let e = parse(&bad, &env, LoadOptions::default()).unwrap_err();
    assert!(
        e.problems[0].starts_with("general_settings.disable_spend_logs"),
        "{e}"
    );
}

#[test]
fn forward_client_headers_to_llm_api_for_every_model_or_named_ones() {
    let load = |text: &str| {
        parse(
            &format!("{DOCS_CONFIG}{text}"),
            &env,
            LoadOptions::default(),
        )
    };
    let off = load("").unwrap();
    assert_eq!(off.forward_headers, ForwardHeaders::default());
    assert!(!off.forward_headers.applies_to("bedrock-agent-1"));

    let all = load("general_settings:\n  forward_client_headers_to_llm_api: true\n").unwrap();
    assert!(all.forward_headers.applies_to("bedrock-agent-2"));
    assert!(
        all.warnings.iter().all(|w| !w.contains("forward_client")),
        "{:?}",
        all.warnings
    );

    let some = load(
        "litellm_settings:\n  model_group_settings:\n    forward_client_headers_to_llm_api: [bedrock-agent-2, team-*, gone]\n",
    )
    .unwrap();
    let f = &some.forward_headers;
    assert!(!f.all);
    assert!(
        f.applies_to("bedrock-agent-2")
            && f.applies_to("team-a")
            && !f.applies_to("bedrock-agent-1")
    );
    assert_eq!(
        some.warnings,
        vec!["litellm_settings.model_group_settings.forward_client_headers_to_llm_api: \"gone\" is not a model_name in model_list".to_string()]
    );

    for bad in [
        "general_settings:\n  forward_client_headers_to_llm_api: [bedrock-agent-1]\n",
        "litellm_settings:\n  model_group_settings:\n    forward_client_headers_to_llm_api: true\n",
        "litellm_settings:\n  model_group_settings: [x]\n",
    ] {
        let e = load(bad).unwrap_err().to_string();
        assert!(
            e.contains("forward_client_headers_to_llm_api") || e.contains("model_group_settings"),
            "{e}"
        );
    }
}
