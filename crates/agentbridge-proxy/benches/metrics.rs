//! What the Prometheus metrics cost a request: `Metrics::record` for a label set the worker
//! thread has seen (every request after a key's first on a deployment), and for one it has
//! not (the lookups in every family, which every request paid before the per-thread cache).
//! `cargo bench -p agentbridge-proxy --bench metrics`; docs/benchmarks.md relates the two to
//! a request's CPU.

#![allow(clippy::unwrap_used)] // fixed inputs: a failure here is a broken benchmark

use agentbridge_proxy::keys::Headroom;
use agentbridge_proxy::observe::RequestRecord;
use agentbridge_proxy::observe::metrics::Metrics;
use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn record() -> RequestRecord {
    RequestRecord {
        time: 1_764_000_000.0,
        request_id: "a3f1c2d4-0000-4000-8000-000000000000".into(),
        door: "chat",
        route: "/chat/completions",
        requested_model: Some("bedrock-agent-1".into()),
        deployment_id: Some("bedrock-agent-1/0".into()),
        litellm_model: Some("bedrock/agent/L1RT58GYRW/MFPSBCXYTW".into()),
        provider: Some("bedrock"),
        key_alias: Some("team-a".into()),
        hashed_key: Some("88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b".into()),
        status: 200,
        latency: 0.012,
        api_latency: Some(0.01),
        time_to_first_token: Some(0.008),
        input_tokens: 120,
        output_tokens: 40,
        cost: 0.0004,
        session: Some("session".into()),
        stream: true,
        error_class: None,
        key_spend: Some(1.5),
        key_max_budget: Some(100.0),
        key_headroom: Headroom {
            requests: Some(50),
            tokens: Some(10_000),
        },
    }
}

fn bench(c: &mut Criterion) {
    let rec = record();
    let m = Metrics::new();
    c.bench_function("metrics_record_seen_label_set", |b| {
        b.iter(|| m.record(black_box(&rec)))
    });
    // Two registries in turn: each call finds the thread's cache holding the other's
    // handles, so it resolves every series in its families again (they exist already).
    let (a, z) = (Metrics::new(), Metrics::new());
    c.bench_function("metrics_record_uncached_two_calls", |b| {
        b.iter(|| {
            a.record(black_box(&rec));
            z.record(black_box(&rec));
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
