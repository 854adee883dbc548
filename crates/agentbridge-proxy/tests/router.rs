//! The whole router driven with `tower::ServiceExt::oneshot`, against the emulator.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a failed test

use agentbridge_proxy::config::{LoadOptions, parse};
use agentbridge_proxy::{app, state::Gateway};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

async fn router(master_key: Option<&str>, limits: &str) -> axum::Router {
    let addr = agentbridge_emulator::spawn(Default::default())
        .await
        .unwrap();
    let mut text = format!(
        "model_list:\n  - model_name: agent\n    litellm_params:\n      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW\n      aws_access_key_id: {}\n      aws_secret_access_key: {}\n      aws_region_name: us-west-2\n      api_base: http://{addr}\n",
        agentbridge_emulator::TEST_ACCESS_KEY_ID,
        agentbridge_emulator::TEST_SECRET_ACCESS_KEY
    );
    if let Some(k) = master_key {
        text.push_str(&format!(
            "general_settings:\n  master_key: {k}\n  database_url: \"sqlite::memory:\"\n"
        ));
    }
    text.push_str(limits);
    let cfg = parse(&text, &|_| None, LoadOptions::default()).unwrap();
    app(Arc::new(Gateway::new(cfg).await.unwrap())).unwrap()
}

async fn send(r: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn chat(body: Value, key: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/v1/chat/completions").header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn completion_through_the_router() {
    let r = router(None, "").await;
    let (s, v) = send(
        &r,
        chat(
            json!({"model": "agent", "messages": [{"role": "user", "content": "hi"}]}),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["model"], "agent");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .ends_with("hi")
    );
}

#[tokio::test]
async fn master_key_guards_the_api_but_not_health() {
    let r = router(Some("a-long-enough-master-key"), "").await;
    let body = json!({"model": "agent", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        send(&r, chat(body.clone(), None)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&r, chat(body.clone(), Some("wrong"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&r, chat(body, Some("a-long-enough-master-key")))
            .await
            .0,
        StatusCode::OK
    );
    let health = Request::get("/health/readiness")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&r, health).await.0, StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_are_413_in_openai_shape() {
    let r = router(None, "agentbridge:\n  max_body_bytes: 1024\n").await;
    let big =
        json!({"model": "agent", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let (s, v) = send(&r, chat(big, None)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "request_too_large");
}

#[tokio::test]
async fn unknown_models_are_404_listing_what_is_served() {
    let r = router(None, "").await;
    let (s, v) = send(
        &r,
        chat(
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"]["message"].as_str().unwrap().contains("agent"));
}
