//! The fuzz targets' pipelines on stable Rust: mutated copies of real inputs through the
//! request parser + transform, and through the frame decoder + event decoder + answer builder.
//! `fuzz/` explores the same code coverage-guided (nightly); this test runs everywhere and
//! checks that no input panics, and that an unmutated stream still folds into an answer.

#![allow(clippy::unwrap_used)] // test code: a failure is a failed test

use agentbridge::answer::{AnswerState, Piece};
use agentbridge::events;
use agentbridge::eventstream::FrameDecoder;
use agentbridge::request::{AnswerOptions, to_invoke_agent};
use agentbridge::{AgentModel, ChatRequest};
use proptest::prelude::*;

const STREAM: &[u8] = include_bytes!("fixtures/citations.bin");
const REQUEST: &[u8] = br#"{"model":"bedrock/agent/L1RT58GYRW/MFPSBCXYTW","messages":[{"role":"system","content":"Be brief"},{"role":"user","content":[{"type":"text","text":"Hi"}]},{"role":"assistant","content":"Hello"},{"role":"user","content":"Weather in Paris?"}],"stream":true,"stream_options":{"include_usage":true},"sessionState":{"sessionAttributes":{"a":"b"}},"user":"u1"}"#;

/// Applies byte replacements, insertions and an optional truncation.
fn mutate(seed: &[u8], edits: &[(usize, u8, bool)], cut: Option<usize>) -> Vec<u8> {
    let mut data = seed.to_vec();
    for &(at, byte, insert) in edits {
        let at = at % (data.len() + 1);
        if insert || at == data.len() {
            data.insert(at, byte);
        } else {
            data[at] = byte;
        }
    }
    if let Some(cut) = cut {
        data.truncate(cut % (data.len() + 1));
    }
    data
}

/// Mutates inside frames and then rewrites each frame's lengths and CRCs, so that mutations
/// reach the header and payload parsers behind the checksums (as the event_stream fuzz target
/// does for half its inputs). The edits land in the headers and payload of frame `pick`, so
/// that the frames after it still decode.
fn mutate_frames(seed: &[u8], pick: usize, edits: &[(usize, u8, bool)]) -> Vec<u8> {
    let word = |b: &[u8], i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
    let mut frames = Vec::new();
    let mut at = 0;
    while at < seed.len() {
        let total = word(seed, at);
        frames.push(seed[at..at + total].to_vec());
        at += total;
    }
    let count = frames.len();
    let frame = &mut frames[pick % count];
    for &(at, byte, insert) in edits {
        let inner = frame.len() - 16;
        let at = 12 + at % (inner + 1);
        if insert || inner == 0 {
            frame.insert(at, byte);
        } else {
            let last = frame.len() - 5;
            frame[at.min(last)] = byte;
        }
    }
    let mut out = Vec::new();
    for mut frame in frames {
        let total = frame.len();
        let headers = word(&frame, 4).min(total - 16);
        frame[0..4].copy_from_slice(&(total as u32).to_be_bytes());
        frame[4..8].copy_from_slice(&(headers as u32).to_be_bytes());
        let prelude = crc32fast::hash(&frame[0..8]);
        frame[8..12].copy_from_slice(&prelude.to_be_bytes());
        let message = crc32fast::hash(&frame[..total - 4]);
        frame[total - 4..].copy_from_slice(&message.to_be_bytes());
        out.extend(frame);
    }
    out
}

/// Feeds `data` in pieces of `piece` bytes; returns the answer text and the token total, or
/// `None` where the input was refused (an error, never a panic).
fn decode_and_build(data: &[u8], piece: usize, stream: bool) -> Option<(String, u64)> {
    let options = AnswerOptions {
        stream,
        include_usage: true,
        include_trace: true,
    };
    let mut state = AnswerState::new("mutated".into(), options, None);
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut text = String::new();
    let mut keep = |pieces: Vec<Piece>| {
        for p in pieces {
            if let Piece::Text(t) = p {
                text.push_str(&t);
            }
        }
    };
    for chunk in data.chunks(piece) {
        decoder.push(chunk);
        while let Some(msg) = decoder.next_message().ok()? {
            if let Some(event) = events::decode(&msg).ok()? {
                keep(state.accept(event).ok()?);
            }
        }
    }
    decoder.finish().ok()?;
    keep(state.end());
    Some((text, state.outcome().usage.total_tokens))
}

fn parse_and_transform(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<ChatRequest>(data) else {
        return;
    };
    let agent = AgentModel::parse("bedrock/agent/L1RT58GYRW/MFPSBCXYTW").unwrap();
    let _ = AgentModel::parse(&req.model);
    if let Ok(req) = agentbridge::completion::agent_request(req)
        && let Ok(invoke) = to_invoke_agent(&agent, &req, &serde_json::Map::new())
    {
        serde_json::to_vec(&invoke.body).unwrap();
    }
}

#[test]
fn the_unmutated_inputs_are_accepted() {
    for piece in [1, 7, 64, STREAM.len()] {
        let (text, tokens) = decode_and_build(STREAM, piece, piece % 2 == 1).unwrap();
        assert_eq!(
            text, "Q3 revenue grew 12% year over year. Churn fell to 3%.",
            "piece {piece}"
        );
        assert_eq!(tokens, 1043, "piece {piece}");
    }
    let req: ChatRequest = serde_json::from_slice(REQUEST).unwrap();
    let agent = AgentModel::parse(&req.model).unwrap();
    let req = agentbridge::completion::agent_request(req).unwrap();
    to_invoke_agent(&agent, &req, &serde_json::Map::new()).unwrap();
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, bool)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_event_streams_never_panic(
        edits in edits(),
        cut in proptest::option::of(any::<usize>()),
        fix in any::<bool>(),
        pick in any::<usize>(),
        piece in 1usize..64,
        stream in any::<bool>(),
    ) {
        let data = if fix { mutate_frames(STREAM, pick, &edits) } else { mutate(STREAM, &edits, cut) };
        decode_and_build(&data, piece, stream);
    }

    #[test]
    fn mutated_chat_requests_never_panic(
        edits in edits(),
        cut in proptest::option::of(any::<usize>()),
    ) {
        parse_and_transform(&mutate(REQUEST, &edits, cut));
    }
}
