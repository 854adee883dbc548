//! What each door costs a streamed answer of its own: parsing the request body (the one
//! `scripts/bench` sends) and writing the bench's canned answer (three text pieces and the
//! end) as the door's events. `cargo bench -p agentbridge-proxy --bench doors`;
//! docs/benchmarks.md relates it to a request's CPU.

#![allow(clippy::unwrap_used)] // fixed inputs: a failure here is a broken benchmark

use agentbridge::canonical::{Ending, Finish, Outcome, Piece};
use agentbridge_proxy::doors::chat::Chat;
use agentbridge_proxy::doors::messages::Messages;
use agentbridge_proxy::doors::responses::Responses;
use agentbridge_proxy::doors::{AnswerMeta, Door};
use agentbridge_proxy::sse::SseEncoder;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use http::HeaderMap;

const QUESTION: &str = "Analyze our customer data and suggest retention strategies";

fn pieces() -> Vec<Piece> {
    let mut outcome = Outcome::default();
    outcome.usage.prompt_tokens = 953;
    outcome.usage.completion_tokens = 78;
    outcome.usage.total_tokens = 1031;
    vec![
        Piece::Text("Emulated agent CANNED (a".into()),
        Piece::Text("lias CANNED) received: c".into()),
        Piece::Text("anned".into()),
        Piece::End(Ending {
            finish: Finish::Stop,
            outcome,
            usage_reported: true,
        }),
    ]
}

fn stream<D: Door>(body: &[u8]) -> usize {
    let parsed = D::parse(body, &HeaderMap::new()).unwrap();
    let meta = AnswerMeta {
        request_id: "3f1c2d4a-0000-4000-8000-000000000000".into(),
        model: parsed.model,
        created: 1_764_000_000,
        deployment: "bedrock-agent-1/0".into(),
    };
    let mut encoder = D::encoder(
        parsed.ctx,
        meta,
        &parsed.request,
        "6549dd4d-c04e-4461-b52e-2de946944526",
    );
    let mut out = Vec::with_capacity(4096);
    for p in pieces() {
        encoder.piece(p, &mut out);
    }
    out.len()
}

fn doors(c: &mut Criterion) {
    let chat = serde_json::json!({"model": "bedrock-agent-1", "stream": true,
        "messages": [{"role": "user", "content": QUESTION}]})
    .to_string();
    let responses =
        serde_json::json!({"model": "bedrock-agent-1", "stream": true, "input": QUESTION})
            .to_string();
    let messages = serde_json::json!({"model": "bedrock-agent-1", "stream": true,
        "max_tokens": 1024, "messages": [{"role": "user", "content": QUESTION}]})
    .to_string();
    c.bench_function("chat stream", |b| {
        b.iter(|| stream::<Chat>(black_box(chat.as_bytes())))
    });
    c.bench_function("responses stream", |b| {
        b.iter(|| stream::<Responses>(black_box(responses.as_bytes())))
    });
    c.bench_function("messages stream", |b| {
        b.iter(|| stream::<Messages>(black_box(messages.as_bytes())))
    });
}

criterion_group!(benches, doors);
criterion_main!(benches);
