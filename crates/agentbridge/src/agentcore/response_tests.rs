use super::*;
use serde_json::json;

fn opts(trace: bool) -> AnswerOptions {
    AnswerOptions {
        include_trace: trace,
        ..Default::default()
    }
}

#[test]
fn text_deltas_read_directly_as_through_a_value() {
    let events = [
        r#"{"event": {"contentBlockDelta": {"delta": {"text": "Hello"}}}}"#,
        r#"{"event":{"contentBlockDelta":{"delta":{"text":" w\u00f6rld \"q\""},"contentBlockIndex":0}}}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"text": ""}}}}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"text": "x", "extra": 1}}}}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"text": 5}}}}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"toolUse": {"input": "{}"}}}}}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"text": "a"}, "contentBlockIndex": -1}}}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"text": "a"}}}, "other": true}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"text": "a"}}, "event": {"messageStop": {"stopReason": "end_turn"}}}}"#,
        r#"{"event": {"contentBlockDelta": {"delta": {"text": "a"}}}, "event": {"messageStop": {"stopReason": "guardrail_intervened"}}}"#,
        r#""not \"contentBlockDelta\" at all""#,
    ];
    for trace in [false, true] {
        for e in events {
            let mut direct = SseAnswer::new(opts(trace), None);
            let mut general = SseAnswer::new(opts(trace), None);
            let got = direct.accept(e).map_err(|e| e.to_string());
            let want = general
                .accept_value(e, Vec::new())
                .map_err(|e| e.to_string());
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{e}");
            assert_eq!(
                format!("{:?}", direct.end()),
                format!("{:?}", general.end()),
                "{e}"
            );
        }
    }
}

#[test]
fn at_finds_what_a_pointer_of_the_same_keys_finds() {
    let values = [
        json!({"a": {"b": {"c": 1}}}),
        json!({"a": {"b": [1, 2]}}),
        json!({"a": [{"b": 1}]}),
        json!({"a": "b"}),
        json!(["a"]),
        json!(null),
        json!({"a/b": {"~c": 2}}),
    ];
    let paths: &[&[&str]] = &[
        &["a"],
        &["a", "b"],
        &["a", "b", "c"],
        &["a", "0"],
        &["x"],
        &[],
    ];
    for v in &values {
        for keys in paths {
            let pointer: String = keys.iter().map(|k| format!("/{k}")).collect();
            assert_eq!(
                at(v, keys),
                v.pointer(&pointer).filter(|_| !keys.contains(&"0")),
                "{v} {pointer}"
            );
        }
    }
    assert_eq!(at(&values[6], &["a/b", "~c"]), Some(&json!(2)));
}

fn run(events: &[Value], trace: bool) -> Result<Vec<Piece>> {
    let mut a = SseAnswer::new(opts(trace), None);
    let mut out = Vec::new();
    for e in events {
        out.extend(a.accept(&e.to_string())?);
    }
    out.extend(a.end());
    Ok(out)
}

fn text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn ending(pieces: &[Piece]) -> Ending {
    let ends: Vec<Ending> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::End(e) => Some(*e),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1, "exactly one end: {pieces:?}");
    assert!(matches!(pieces.last(), Some(Piece::End(_))));
    ends[0]
}

fn delta(t: &str) -> Value {
    json!({"event": {"contentBlockDelta": {"delta": {"text": t}}}})
}

fn usage(i: u64, o: u64) -> Value {
    json!({"event": {"metadata": {"usage": {"inputTokens": i, "outputTokens": o, "totalTokens": i + o}}}})
}

#[test]
fn strands_raw_events_give_the_text_once_and_sum_usage_over_model_calls() {
    let events = [
        json!({"init_event_loop": true}),
        json!({"event": {"messageStart": {"role": "assistant"}}}),
        json!({"event": {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t1", "name": "get_weather"}}}}}),
        json!({"event": {"contentBlockDelta": {"delta": {"toolUse": {"input": "{\"city\": \"Berlin\"}"}}}}}),
        json!(
            "{'type': 'tool_use_stream', 'delta': {'toolUse': {'input': '{}'}}, 'agent': <strands.agent.agent.Agent object at 0x7f>}"
        ),
        json!({"event": {"messageStop": {"stopReason": "tool_use"}}}),
        usage(120, 15),
        json!({"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}]}}),
        json!({"message": {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "status": "success", "content": [{"text": "sunny"}]}}]}}),
        delta("It's"),
        json!(
            "{'data': \"It's\", 'delta': {'text': \"It's\"}, 'agent': <strands.agent.agent.Agent object at 0x7f>}"
        ),
        delta(" sunny"),
        json!(
            "{'data': ' sunny', 'delta': {'text': ' sunny'}, 'agent': <strands.agent.agent.Agent object at 0x7f>}"
        ),
        json!({"event": {"messageStop": {"stopReason": "end_turn"}}}),
        usage(180, 25),
        json!({"message": {"role": "assistant", "content": [{"text": "It's sunny"}]}}),
        json!(
            "{'result': AgentResult(stop_reason='end_turn', message={'role': 'assistant', 'content': [{'text': \"It's sunny\"}]}, state={})}"
        ),
    ];
    let pieces = run(&events, false).unwrap();
    assert_eq!(text(&pieces), "It's sunny");
    assert!(
        !pieces
            .iter()
            .any(|p| matches!(p, Piece::ToolCalls(_) | Piece::Trace(_)))
    );
    let e = ending(&pieces);
    assert!(e.usage_reported);
    assert_eq!(e.outcome.usage.prompt_tokens, 300);
    assert_eq!(e.outcome.usage.completion_tokens, 40);
    assert_eq!(e.outcome.usage.total_tokens, 340);
    assert_eq!(e.finish, Finish::Stop);

    let traced = run(&events, true).unwrap();
    let traces = traced
        .iter()
        .filter(|p| matches!(p, Piece::Trace(_)))
        .count();
    assert_eq!(traces, 3, "tool start, tool-use message, tool result");
    assert_eq!(text(&traced), "It's sunny");
}

#[test]
fn plain_json_strings_are_text_and_usage_stays_unreported() {
    let pieces = run(&[json!("Hello"), json!(", world")], false).unwrap();
    assert_eq!(text(&pieces), "Hello, world");
    let e = ending(&pieces);
    assert!(!e.usage_reported);
    assert_eq!(e.outcome.usage, Usage::default());
    assert_eq!(e.outcome.cost, 0.0);
}

#[test]
fn text_that_merely_looks_like_a_dict_is_still_text() {
    for s in [
        "{'a': 1}",
        "{'city': 'Berlin'}",
        "{ not python }",
        "{'data'}",
    ] {
        assert!(!is_python_repr(s), "{s}");
    }
    assert!(is_python_repr("{'data': 'x', 'agent': <A>}"));
    assert!(is_python_repr(" {'init_event_loop': True} "));
}

#[test]
fn the_error_event_after_output_is_an_in_band_runtime_client_error() {
    let mut a = SseAnswer::new(opts(false), None);
    assert_eq!(a.accept("\"one\"").unwrap(), [Piece::Text("one".into())]);
    let e = a
        .accept(r#"{"error": "scripted failure", "error_type": "RuntimeError", "message": "An error occurred during streaming"}"#)
        .unwrap_err();
    assert_eq!(e.status_code(), 424);
    assert!(e.to_string().contains("scripted failure"), "{e}");
    assert_eq!(e.code(), "RuntimeClientError.RuntimeError");
}

#[test]
fn guardrail_stop_reason_is_a_content_filter_finish() {
    let pieces = run(
        &[
            delta("no"),
            json!({"event": {"messageStop": {"stopReason": "guardrail_intervened"}}}),
        ],
        false,
    )
    .unwrap();
    assert_eq!(ending(&pieces).finish, Finish::ContentFilter);
}

#[test]
fn a_final_message_alone_gives_its_text() {
    let pieces = run(
        &[json!({"message": {"role": "assistant", "content": [{"text": "only here"}]}})],
        false,
    )
    .unwrap();
    assert_eq!(text(&pieces), "only here");
}

#[test]
fn non_json_data_lines_are_text() {
    let mut a = SseAnswer::new(opts(false), None);
    assert_eq!(
        a.accept("plain words").unwrap(),
        [Piece::Text("plain words".into())]
    );
}

#[test]
fn json_shapes_are_read_in_order_and_unknown_json_is_its_raw_text() {
    let cases = [
        (
            json!({"jsonrpc": "2.0", "id": 1, "result": {"message": {"parts": [{"kind": "text", "text": "A"}, {"kind": "text", "text": "B"}]}}}),
            "AB",
        ),
        (
            json!({"result": {"role": "assistant", "content": [{"text": "strands"}]}}),
            "strands",
        ),
        (json!({"message": {"content": [{"text": "msg"}]}}), "msg"),
        (
            json!({"response": [{"text": "r1"}, {"text": "r2"}]}),
            "r1r2",
        ),
        (json!({"result": "plain result"}), "plain result"),
        (json!({"response": "plain response"}), "plain response"),
        (json!("a JSON string"), "a JSON string"),
        (json!({"answer": 42}), "{\"answer\":42}"),
    ];
    for (body, want) in cases {
        let pieces = json_answer(body.to_string().as_bytes(), opts(false), None);
        assert_eq!(text(&pieces), want, "{body}");
        assert!(!ending(&pieces).usage_reported);
    }
    let raw = json_answer(b"not json at all", opts(false), None);
    assert_eq!(text(&raw), "not json at all");
}

#[test]
fn json_usage_comes_from_the_message_metadata_and_is_priced_by_the_deployment() {
    let body = json!({"result": {"role": "assistant", "content": [{"text": "hi"}],
        "metadata": {"usage": {"inputTokens": 100, "outputTokens": 10, "totalTokens": 110}}}});
    let price = Price {
        input: 0.001,
        output: 0.01,
    };
    let pieces = json_answer(body.to_string().as_bytes(), opts(false), Some(price));
    let e = ending(&pieces);
    assert!(e.usage_reported);
    assert_eq!(e.outcome.usage.total_tokens, 110);
    assert!((e.outcome.cost - 0.2).abs() < 1e-9);
}
