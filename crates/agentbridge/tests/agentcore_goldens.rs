//! The AgentCore target's readers on the golden wire recordings of real agents
//! (`tests/fixtures/agentcore/`: BedrockAgentCoreApp + Strands, one per entrypoint shape),
//! fed in chunks of several sizes: each answer's text exactly once, the summed usage, one end.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a failed test

use agentbridge::agentcore::{response, sse_pieces};
use agentbridge::canonical::{AnswerOptions, Ending, Piece};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use std::path::PathBuf;

const ANSWER: &str = "Hello from the Strands agent. You said: Hi there";
const TOOL_ANSWER: &str = "The weather tool says: sunny and 21 degrees in Berlin";

fn fixture(shape: &str) -> (String, Vec<u8>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/agentcore");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{shape}.meta.json"))).unwrap())
            .unwrap();
    let body = std::fs::read(dir.join(format!("{shape}.body"))).unwrap();
    (meta["content_type"].as_str().unwrap().to_string(), body)
}

struct Read {
    text: String,
    ends: Vec<Ending>,
    traces: usize,
    error: Option<agentbridge::Error>,
}

async fn read(shape: &str, chunk: usize, trace: bool) -> Read {
    let (content_type, body) = fixture(shape);
    let options = AnswerOptions {
        include_trace: trace,
        ..Default::default()
    };
    let pieces: Vec<agentbridge::Result<Piece>> = if content_type.starts_with("text/event-stream") {
        let chunks: Vec<agentbridge::Result<Bytes>> = body
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        sse_pieces(futures::stream::iter(chunks), 1 << 20, options, None)
            .collect()
            .await
    } else {
        response::json_answer(&body, options, None)
            .into_iter()
            .map(Ok)
            .collect()
    };
    let mut r = Read {
        text: String::new(),
        ends: Vec::new(),
        traces: 0,
        error: None,
    };
    for p in pieces {
        match p {
            Ok(Piece::Text(t)) => r.text.push_str(&t),
            Ok(Piece::End(e)) => r.ends.push(e),
            Ok(Piece::Trace(_)) => r.traces += 1,
            Ok(Piece::ToolCalls(_)) => panic!("{shape}: the agent's tool use is not the client's"),
            Ok(_) => {}
            Err(e) => r.error = Some(e),
        }
    }
    r
}

#[tokio::test]
async fn each_recorded_shape_gives_its_text_once_its_usage_and_one_end() {
    // (shape, text, usage reported as (input, output) or none)
    let cases = [
        ("raw_events", ANSWER, Some((120, 15))),
        ("tool", TOOL_ANSWER, Some((120 + 180, 15 + 25))),
        ("text", ANSWER, None),
        ("result_json", ANSWER, Some((120, 15))),
        ("result_text", ANSWER, None),
    ];
    for (shape, text, usage) in cases {
        for chunk in [1, 3, 17, 4096, usize::MAX] {
            let r = read(shape, chunk, false).await;
            assert!(r.error.is_none(), "{shape}: {:?}", r.error);
            assert_eq!(
                r.text.trim_end_matches('\n'),
                text,
                "{shape}, chunks of {chunk}"
            );
            assert_eq!(r.ends.len(), 1, "{shape}");
            let end = r.ends[0];
            match usage {
                Some((i, o)) => {
                    assert!(end.usage_reported, "{shape}");
                    assert_eq!(
                        (
                            end.outcome.usage.prompt_tokens,
                            end.outcome.usage.completion_tokens
                        ),
                        (i, o),
                        "{shape}"
                    );
                }
                None => assert!(!end.usage_reported, "{shape}"),
            }
            assert_eq!(r.traces, 0);
        }
    }
}

#[tokio::test]
async fn the_tool_agents_work_is_a_trace_on_request() {
    let r = read("tool", 64, true).await;
    assert_eq!(r.text, TOOL_ANSWER);
    assert!(r.traces >= 2, "tool use and its result: {}", r.traces);
}

#[tokio::test]
async fn a_raise_after_two_chunks_is_an_in_band_error_after_them() {
    for chunk in [1, 5, usize::MAX] {
        let r = read("raise_midstream", chunk, false).await;
        assert_eq!(r.text, "Hello from");
        assert!(r.ends.is_empty());
        let e = r.error.unwrap();
        assert_eq!(e.status_code(), 424);
        assert!(
            e.to_string().contains("scripted failure after two chunks"),
            "{e}"
        );
    }
}
