//! The AgentCore Runtime target against the emulator in-process: SigV4 with the
//! `bedrock-agentcore` signing name (checked by the emulator's own verifier), bearer tokens,
//! session rules, JSON and SSE answers, errors and the RetryableConflictException retry.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a failed test

use agentbridge::canonical::{AgentRequest, Piece};
use agentbridge::{Client, Deployment, DeploymentSettings, Error, Message};
use agentbridge_emulator::agentcore::AgentCoreConfig;
use agentbridge_emulator::{EmulatorConfig, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

const ARN: &str =
    "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/scripted_agent-AbCdE12345";
const OAUTH_ARN: &str =
    "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/oauth_agent-AbCdE12345";
const TOKEN: &str = "agentcore-test-bearer-token-0123456789";

async fn emulator() -> SocketAddr {
    agentbridge_emulator::spawn(EmulatorConfig {
        agentcore: AgentCoreConfig {
            bearer_tokens: vec![SecretString::from(TOKEN)],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn deployment(addr: SocketAddr, arn: &str, extra: Value) -> Deployment {
    let mut params = json!({
        "aws_access_key_id": TEST_ACCESS_KEY_ID,
        "aws_secret_access_key": TEST_SECRET_ACCESS_KEY,
        "api_base": format!("http://{addr}"),
        "num_retries": 0,
    });
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let params: Map<String, Value> = params.as_object().cloned().unwrap();
    let settings =
        DeploymentSettings::from_params(&format!("bedrock/agentcore/{arn}"), &params).unwrap();
    Deployment::new(settings).await.unwrap()
}

fn ask(text: &str, params: Value) -> AgentRequest {
    let mut r = AgentRequest::new(vec![Message::new("user", text)]);
    r.params = params.as_object().cloned().unwrap_or_default();
    r
}

#[derive(Debug)]
struct Got {
    session: String,
    text: String,
    ends: Vec<agentbridge::canonical::Ending>,
    error: Option<Error>,
}

async fn call(d: &Deployment, req: &AgentRequest) -> Result<Got, Error> {
    let http = Client::new(std::time::Duration::from_secs(5)).unwrap();
    let answer = d.invoke(&http, req).await?;
    let mut got = Got {
        session: answer.session_id,
        text: String::new(),
        ends: Vec::new(),
        error: None,
    };
    let mut pieces = answer.pieces;
    while let Some(p) = pieces.next().await {
        match p {
            Ok(Piece::Text(t)) => got.text.push_str(&t),
            Ok(Piece::End(e)) => got.ends.push(e),
            Ok(_) => {}
            Err(e) => got.error = Some(e),
        }
    }
    Ok(got)
}

#[tokio::test]
async fn a_signed_json_answer_gives_its_text_usage_and_the_derived_session() {
    let addr = emulator().await;
    let d = deployment(addr, ARN, json!({})).await;
    assert_eq!(d.region, "us-west-2", "the region comes from the ARN");
    let got = call(&d, &ask("hello", json!({"session_id": "short"})))
        .await
        .unwrap();
    assert_eq!(
        got.text,
        "Emulated AgentCore runtime scripted_agent-AbCdE12345 received: hello"
    );
    assert_eq!(got.ends.len(), 1);
    assert!(got.ends[0].usage_reported);
    assert_eq!(got.ends[0].outcome.usage.prompt_tokens, 120);
    assert!(got.session.len() >= 33, "{}", got.session);
    let again = call(&d, &ask("what did I say?", json!({"session_id": "short"})))
        .await
        .unwrap();
    assert_eq!(again.session, got.session);
    assert_eq!(again.text, "You said: \"hello\"");
}

#[tokio::test]
async fn sse_usage_is_summed_over_model_calls_with_one_end() {
    let addr = emulator().await;
    let d = deployment(addr, ARN, json!({"qualifier": "prod"})).await;
    let got = call(&d, &ask("weather emulate:sse emulate:calls=3", json!({})))
        .await
        .unwrap();
    assert!(
        got.text
            .ends_with("received: weather emulate:sse emulate:calls=3")
    );
    assert_eq!(got.ends.len(), 1);
    let u = got.ends[0].outcome.usage;
    assert_eq!(u.prompt_tokens, 120 + 180 + 240);
    assert_eq!(u.completion_tokens, 15 + 25 + 35);
}

#[tokio::test]
async fn each_aws_error_keeps_its_status() {
    let addr = emulator().await;
    let d = deployment(addr, ARN, json!({})).await;
    for (name, status) in [
        ("ValidationException", 400),
        ("UnauthorizedException", 401),
        ("ServiceQuotaExceededException", 429),
        ("AccessDeniedException", 403),
        ("ResourceNotFoundException", 404),
        ("ConflictException", 409),
        ("RuntimeClientError", 424),
        ("ThrottlingException", 429),
        ("InternalServerException", 500),
    ] {
        let e = call(&d, &ask(&format!("emulate:error={name}"), json!({})))
            .await
            .unwrap_err();
        assert_eq!(e.status_code(), status, "{name}: {e}");
        assert_eq!(e.code(), name);
    }
}

#[tokio::test]
async fn a_busy_session_is_retried_and_nothing_is_retried_without_retries() {
    let addr = emulator().await;
    let d = deployment(addr, ARN, json!({"num_retries": 2})).await;
    let got = call(&d, &ask("emulate:retryable_conflict_once hi", json!({})))
        .await
        .unwrap();
    assert!(got.text.contains("received"));
    let d0 = deployment(addr, ARN, json!({})).await;
    let e = call(&d0, &ask("emulate:retryable_conflict_once hi", json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "RetryableConflictException");
}

#[tokio::test]
async fn a_midstream_error_follows_the_text_in_band() {
    let addr = emulator().await;
    let d = deployment(addr, ARN, json!({})).await;
    let got = call(&d, &ask("one two three emulate:midstream_error", json!({})))
        .await
        .unwrap();
    assert!(!got.text.is_empty());
    assert!(got.ends.is_empty());
    assert_eq!(got.error.unwrap().status_code(), 424);
}

#[tokio::test]
async fn oauth_runtimes_take_the_api_key_or_the_users_token_as_bearer() {
    let addr = emulator().await;
    let signed = deployment(addr, OAUTH_ARN, json!({})).await;
    assert!(call(&signed, &ask("hi", json!({}))).await.is_err());
    let keyed = deployment(addr, OAUTH_ARN, json!({"api_key": TOKEN})).await;
    assert!(
        call(&keyed, &ask("hi", json!({})))
            .await
            .unwrap()
            .text
            .contains("received: hi")
    );
    let per_user = deployment(
        addr,
        OAUTH_ARN,
        json!({"user_token_header": "x-user-token"}),
    )
    .await;
    let e = call(&per_user, &ask("hi", json!({}))).await.unwrap_err();
    assert_eq!(e.status_code(), 401);
    let mut req = ask("hi", json!({}));
    req.context.user_token = Some(SecretString::from(TOKEN));
    assert!(
        call(&per_user, &req)
            .await
            .unwrap()
            .text
            .contains("received: hi")
    );
    req.context.user_token = Some(SecretString::from("wrong-token"));
    assert_eq!(call(&per_user, &req).await.unwrap_err().status_code(), 401);
}
