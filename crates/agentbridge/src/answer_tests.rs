use super::*;
use serde_json::json;

fn step(name: &str, model: &str, _input: u64, _output: u64) -> AgentEvent {
    AgentEvent::trace(
        &json!({"trace": {name: {"modelInvocationInput": {"foundationModel": model}}}}),
    )
}

fn usage_trace(name: &str, input: u64, output: u64) -> AgentEvent {
    AgentEvent::trace(
        &json!({"trace": {name: {"modelInvocationOutput": {"metadata": {"usage": {"inputTokens": input, "outputTokens": output}}}}}}),
    )
}

fn state() -> AnswerState {
    AnswerState::new("s1".into(), AnswerOptions::default(), None)
}

#[test]
fn usage_sums_every_trace_step() {
    let mut s = state();
    let sonnet = "anthropic.claude-3-5-sonnet-20241022-v2:0";
    for ev in [
        step("preProcessingTrace", sonnet, 0, 0),
        usage_trace("preProcessingTrace", 100, 10),
        step("orchestrationTrace", sonnet, 0, 0),
        usage_trace("orchestrationTrace", 1000, 200),
        usage_trace("orchestrationTrace", 500, 50),
        usage_trace("postProcessingTrace", 300, 30),
        usage_trace("routingClassifierTrace", 20, 2),
    ] {
        s.accept(ev).unwrap();
    }
    let o = s.outcome();
    assert_eq!(
        o.usage,
        Usage {
            prompt_tokens: 1920,
            completion_tokens: 292,
            total_tokens: 2212
        }
    );
    let expected = 1920.0 * 3e-6 + 292.0 * 15e-6;
    assert!(
        (o.cost - expected).abs() < 1e-12,
        "{} vs {expected}",
        o.cost
    );
}

#[test]
fn each_step_is_priced_at_its_own_model() {
    let mut s = state();
    s.accept(step(
        "preProcessingTrace",
        "anthropic.claude-3-haiku-20240307-v1:0",
        0,
        0,
    ))
    .unwrap();
    s.accept(usage_trace("preProcessingTrace", 1000, 0))
        .unwrap();
    s.accept(step(
        "orchestrationTrace",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        0,
        0,
    ))
    .unwrap();
    s.accept(usage_trace("orchestrationTrace", 1000, 0))
        .unwrap();
    assert!((s.outcome().cost - (1000.0 * 0.25e-6 + 1000.0 * 3e-6)).abs() < 1e-12);
}

#[test]
fn deployment_price_overrides_the_table() {
    let mut s = AnswerState::new(
        "s".into(),
        AnswerOptions::default(),
        Some(Price {
            input: 1.0,
            output: 2.0,
        }),
    );
    s.accept(step(
        "orchestrationTrace",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        0,
        0,
    ))
    .unwrap();
    s.accept(usage_trace("orchestrationTrace", 3, 4)).unwrap();
    assert_eq!(s.outcome().cost, 11.0);
}

#[test]
fn utf8_split_inside_a_character_is_reassembled() {
    let text = "héllo wörld 🎉 done";
    let bytes = text.as_bytes();
    for cut in 0..=bytes.len() {
        let mut s = state();
        let mut out = String::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            for p in s
                .accept(AgentEvent::Chunk {
                    bytes: part.to_vec(),
                    attribution: None,
                })
                .unwrap()
            {
                if let Piece::Text(t) = p {
                    out.push_str(&t);
                }
            }
        }
        assert!(matches!(s.end().as_slice(), [Piece::End(_)]));
        assert_eq!(out, text, "cut at {cut}");
    }
}

#[test]
fn invalid_utf8_is_replaced_not_held() {
    let mut s = state();
    let p = s
        .accept(AgentEvent::Chunk {
            bytes: vec![b'a', 0xff, b'b'],
            attribution: None,
        })
        .unwrap();
    assert_eq!(p, vec![Piece::Text("a\u{FFFD}b".into())]);
    s.accept(AgentEvent::Chunk {
        bytes: vec![0xe2, 0x82],
        attribution: None,
    })
    .unwrap();
    assert_eq!(s.end()[0], Piece::Text("\u{FFFD}".into()));
}

#[test]
fn finish_reasons_follow_what_happened() {
    let mut s = state();
    assert_eq!(s.finish_reason(), "stop");
    s.accept(AgentEvent::trace(
        &json!({"trace": {"guardrailTrace": {"action": "INTERVENED"}}}),
    ))
    .unwrap();
    assert_eq!(s.finish_reason(), "content_filter");
    s.accept(AgentEvent::ReturnControl(
        json!({"invocationId": "i", "invocationInputs": [
        {"functionInvocationInput": {"actionGroup": "g", "function": "f"}}]}),
    ))
    .unwrap();
    assert_eq!(s.finish_reason(), "tool_calls");
}

#[test]
fn traces_are_pieces_only_when_asked_for() {
    let ev = usage_trace("orchestrationTrace", 1, 1);
    assert!(state().accept(ev.clone()).unwrap().is_empty());
    let opts = AnswerOptions {
        include_trace: true,
        ..Default::default()
    };
    let mut s = AnswerState::new("s".into(), opts, None);
    assert!(matches!(
        s.accept(ev).unwrap().as_slice(),
        [Piece::Trace(_)]
    ));
}
