//! Golden tests: event-stream bytes in `tests/fixtures/*.bin` (written by the emulator's
//! frame writer) decode and fold into the OpenAI JSON stored beside them (`*.json`, with `id`
//! and `created` blanked), and stream into the chunks stored in `*.chunks.json`.
//! `UPDATE_GOLDEN=1 cargo test -p agentbridge --test golden` rewrites the fixtures.

#![allow(clippy::unwrap_used)] // test code: a failure is a failed test

use agentbridge::bedrock_agent::answer;
use agentbridge::completion::{EventStream, ResponseMeta, chunks, fold};
use agentbridge::events;
use agentbridge::eventstream::FrameDecoder;
use agentbridge::request::AnswerOptions;
use agentbridge_emulator::agent::{Call, Step, respond};
use agentbridge_emulator::script::Script;
use futures::StreamExt;
use serde_json::Value;
use std::path::PathBuf;

const CASES: &[(&str, &str, bool)] = &[
    ("basic", "Summarise our Q3 sales", false),
    ("streamed_unicode", "emulate:unicode", true),
    ("return_control", "Weather? emulate:return_control", false),
    ("citations", "How did Q3 go? emulate:citations", true),
    ("guardrail", "forbidden emulate:guardrail", false),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn emulator_bytes(input: &str, stream: bool) -> Vec<u8> {
    let call = Call {
        agent_id: "L1RT58GYRW".into(),
        alias_id: "MFPSBCXYTW".into(),
        session_id: "golden-session".into(),
        input: input.into(),
        stream_final: stream,
        script: Script::parse(input),
        invocation_id: "golden-invocation".into(),
        ..Default::default()
    };
    respond(&call)
        .0
        .into_iter()
        .flat_map(|s| if let Step::Send(b) = s { b } else { vec![] })
        .collect()
}

fn events_of(bytes: &[u8]) -> EventStream {
    let mut d = FrameDecoder::default();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        if let Some(e) = events::decode(&m).unwrap() {
            out.push(Ok(e));
        }
    }
    d.finish().unwrap();
    Box::pin(futures::stream::iter(out))
}

fn blank(mut v: Value) -> Value {
    v["id"] = Value::Null;
    v["created"] = Value::Null;
    if let Some(calls) = v
        .pointer_mut("/choices/0/message/tool_calls")
        .and_then(Value::as_array_mut)
    {
        for c in calls {
            c["id"] = Value::String("<tool-call-id>".into());
        }
    }
    v
}

#[tokio::test]
async fn fixtures_fold_and_stream_into_the_stored_openai_json() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, input, stream) in CASES {
        let bin = dir().join(format!("{name}.bin"));
        if update {
            std::fs::write(&bin, emulator_bytes(input, *stream)).unwrap();
        }
        let bytes = std::fs::read(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let options = AnswerOptions {
            stream: *stream,
            include_usage: true,
            include_trace: false,
        };
        let completion = fold(
            ResponseMeta::new("bedrock-agent-1"),
            answer("golden-session".into(), options, None, events_of(&bytes)),
            options,
        )
        .await
        .unwrap();
        let got = blank(serde_json::to_value(&completion).unwrap());

        let streamed: Vec<Value> = chunks(
            ResponseMeta::new("bedrock-agent-1"),
            answer("golden-session".into(), options, None, events_of(&bytes)),
            options,
        )
        .map(|c| blank(serde_json::to_value(c.unwrap()).unwrap()))
        .collect()
        .await;

        let json_path = dir().join(format!("{name}.json"));
        let chunks_path = dir().join(format!("{name}.chunks.json"));
        if update {
            std::fs::write(
                &json_path,
                serde_json::to_string_pretty(&got).unwrap() + "\n",
            )
            .unwrap();
            std::fs::write(
                &chunks_path,
                serde_json::to_string_pretty(&streamed).unwrap() + "\n",
            )
            .unwrap();
        }
        let want: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
        assert_eq!(
            got,
            want,
            "{name}: chat.completion differs from {}",
            json_path.display()
        );
        let want: Value = serde_json::from_slice(&std::fs::read(&chunks_path).unwrap()).unwrap();
        assert_eq!(
            Value::Array(streamed),
            want,
            "{name}: chunks differ from {}",
            chunks_path.display()
        );
    }
}
