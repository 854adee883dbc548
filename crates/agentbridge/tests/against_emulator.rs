//! The SDK's client against the emulator in-process: signing checked by an independent
//! verifier, event streams decoded, usage and cost summed, errors mapped.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a failed test

use agentbridge::{
    AwsErrorKind, ChatRequest, Client, Deployment, DeploymentSettings, Error, Message,
};
use agentbridge_emulator::{EmulatorConfig, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use futures::StreamExt;
use serde_json::{Map, Value, json};

async fn deployment(secret: &str) -> Deployment {
    let addr = agentbridge_emulator::spawn(EmulatorConfig::default())
        .await
        .unwrap();
    let params: Map<String, Value> = json!({
        "aws_access_key_id": TEST_ACCESS_KEY_ID,
        "aws_secret_access_key": secret,
        "aws_region_name": "us-west-2",
        "api_base": format!("http://{addr}"),
        "num_retries": 0,
    })
    .as_object()
    .cloned()
    .unwrap();
    let settings =
        DeploymentSettings::from_params("bedrock/agent/L1RT58GYRW/MFPSBCXYTW", &params).unwrap();
    Deployment::new(settings).await.unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        model: "my-agent".into(),
        messages: vec![Message::new("user", text)],
        ..Default::default()
    }
}

#[tokio::test]
async fn completion_sums_usage_over_every_trace_step_and_prices_it() {
    let d = deployment(TEST_SECRET_ACCESS_KEY).await;
    let c = Client::new(std::time::Duration::from_secs(5))
        .unwrap()
        .complete(&d, &ask("one two"), "my-agent")
        .await
        .unwrap();
    let text = c.choices[0].message.content.clone().unwrap();
    let usage = c.usage.unwrap();
    assert_eq!(
        text,
        "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: one two"
    );
    assert_eq!(c.model, "my-agent");
    // Emulator: pre (200+words, 25), orchestration (600+2*words, len/4+10), post (150, 30).
    assert_eq!(usage.prompt_tokens, 202 + 604 + 150);
    assert_eq!(
        usage.completion_tokens,
        25 + (text.len() as u64 / 4 + 10) + 30
    );
    let expected = usage.prompt_tokens as f64 * 3e-6 + usage.completion_tokens as f64 * 15e-6;
    assert!((c.response_cost - expected).abs() < 1e-12);
}

#[tokio::test]
async fn streaming_yields_chunks_as_the_agent_sends_them() {
    let d = deployment(TEST_SECRET_ACCESS_KEY).await;
    let mut s = Client::new(std::time::Duration::from_secs(5))
        .unwrap()
        .stream(
            &d,
            &ChatRequest {
                stream: true,
                ..ask("a question long enough to be streamed in pieces")
            },
            "m",
        )
        .await
        .unwrap();
    let mut pieces = Vec::new();
    while let Some(c) = s.next().await {
        pieces.push(c.unwrap());
    }
    let text: String = pieces
        .iter()
        .filter_map(|c| c.choices.first()?.delta.content.clone())
        .collect();
    assert!(text.ends_with("a question long enough to be streamed in pieces"));
    assert!(pieces.len() > 3);
    assert_eq!(s.outcome().map(|o| o.usage.total_tokens > 0), Some(true));
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_emulators_signature_check() {
    let d = deployment("not-the-secret").await;
    let e = Client::new(std::time::Duration::from_secs(5))
        .unwrap()
        .complete(&d, &ask("hi"), "m")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Aws { kind: AwsErrorKind::Authentication, code, .. } if code == "InvalidSignatureException"),
        "{e:?}"
    );
    assert_eq!(e.status_code(), 401);
}

#[tokio::test]
async fn pre_stream_and_in_stream_errors_are_typed() {
    let d = deployment(TEST_SECRET_ACCESS_KEY).await;
    let client = Client::new(std::time::Duration::from_secs(5)).unwrap();
    let e = client
        .complete(&d, &ask("x emulate:error=ConflictException"), "m")
        .await
        .unwrap_err();
    assert_eq!(
        (e.status_code(), e.code()),
        (409, "ConflictException".to_string())
    );
    let e = client
        .complete(
            &d,
            &ask("x emulate:exception=dependencyFailedException"),
            "m",
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.status_code(), e.code()),
        (424, "DependencyFailedException".to_string())
    );
}
