//! Per-component costs: request transform + SigV4 signing; event-stream decode + response
//! build. `cargo bench -p agentbridge`.

#![allow(clippy::unwrap_used)] // fixed inputs: a failure here is a broken benchmark

use agentbridge::completion::{ResponseMeta, fold};
use agentbridge::eventstream::FrameDecoder;
use agentbridge::request::{AnswerOptions, to_invoke_agent};
use agentbridge::signing::{InvokeSigner, InvokeToSign, sign_request};
use agentbridge::{AgentModel, ChatRequest, events};
use agentbridge_emulator::agent::{Call, Step, respond};
use aws_credential_types::Credentials;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use std::time::SystemTime;

fn request() -> ChatRequest {
    serde_json::from_value(serde_json::json!({
        "model": "bedrock-agent-1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "Analyze our customer data and suggest retention strategies"}
        ],
        "invocationId": "my-test-invocation-id"
    }))
    .unwrap()
}

fn canned_stream(stream: bool) -> Vec<u8> {
    let call = Call {
        agent_id: "L1RT58GYRW".into(),
        alias_id: "MFPSBCXYTW".into(),
        session_id: "bench".into(),
        input: "Analyze our customer data and suggest retention strategies".into(),
        stream_final: stream,
        invocation_id: "i".into(),
        ..Default::default()
    };
    respond(&call)
        .0
        .into_iter()
        .flat_map(|s| match s {
            Step::Send(b) => b,
            _ => vec![],
        })
        .collect()
}

fn transform_and_sign(c: &mut Criterion) {
    let agent = AgentModel::parse("bedrock/agent/L1RT58GYRW/MFPSBCXYTW").unwrap();
    let req = agentbridge::completion::agent_request(request()).unwrap();
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "bench",
    );
    c.bench_function("transform_request", |b| {
        b.iter(|| to_invoke_agent(&agent, black_box(&req), &serde_json::Map::new()).unwrap())
    });
    let host = "bedrock-agent-runtime.us-west-2.amazonaws.com";
    let sign_inputs = |r: &agentbridge::request::InvokeAgentRequest| {
        let body = serde_json::to_vec(&r.body).unwrap();
        let path = format!(
            "/agents/{}/agentAliases/{}/sessions/{}/text",
            r.agent.agent_id, r.agent.alias_id, r.session_id
        );
        (body, path)
    };
    // What the client does per request: the signing key cached per day and region.
    let signer = InvokeSigner::new();
    c.bench_function("transform_and_sign", |b| {
        b.iter(|| {
            let r = to_invoke_agent(&agent, black_box(&req), &serde_json::Map::new()).unwrap();
            let (body, path) = sign_inputs(&r);
            let req = InvokeToSign {
                host,
                path: &path,
                query: "",
                source_arn: None,
                extra: &[],
                body: &body,
            };
            signer
                .sign(&creds, "us-west-2", req, SystemTime::now())
                .unwrap()
        })
    });
    // aws-sigv4's general signer (derives the key every time), for comparison.
    c.bench_function("transform_and_sign_general", |b| {
        b.iter(|| {
            let r = to_invoke_agent(&agent, black_box(&req), &serde_json::Map::new()).unwrap();
            let (body, path) = sign_inputs(&r);
            let url = format!("https://{host}{path}");
            sign_request(
                &creds,
                "us-west-2",
                "POST",
                &url,
                &[("host", host), ("content-type", "application/json")],
                &body,
                SystemTime::now(),
            )
            .unwrap()
        })
    });
}

fn decode_and_build(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (name, stream) in [
        ("decode_and_build_single_chunk", false),
        ("decode_and_build_streamed", true),
    ] {
        let bytes = canned_stream(stream);
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut d = FrameDecoder::default();
                d.push(black_box(&bytes));
                let mut evs = Vec::new();
                while let Some(m) = d.next_message().unwrap() {
                    if let Some(e) = events::decode(&m).unwrap() {
                        evs.push(Ok(e));
                    }
                }
                let options = AnswerOptions::default();
                let answer = agentbridge::bedrock_agent::answer(
                    "bench".into(),
                    options,
                    None,
                    Box::pin(futures::stream::iter(evs)),
                );
                let completion =
                    rt.block_on(fold(ResponseMeta::new("bedrock-agent-1"), answer, options));
                serde_json::to_vec(&completion.unwrap()).unwrap()
            })
        });
    }
}

criterion_group!(benches, transform_and_sign, decode_and_build);
criterion_main!(benches);
