//! The Responses door's parse and rendering, as tables of cases.

use super::*;
use crate::sse::SseEncoder;
use agentbridge::canonical::{Ending, Finish, Outcome};
use agentbridge::openai::{FunctionCall, ToolCall, UrlCitation as OaiCitation, Usage};
use serde_json::json;

fn parse(body: Value) -> Result<Parsed<Ctx>> {
    Responses::parse(body.to_string().as_bytes(), &HeaderMap::new())
}

fn meta() -> AnswerMeta {
    AnswerMeta {
        request_id: "req-1".into(),
        model: "agent".into(),
        created: 7,
        deployment: "agent/0".into(),
    }
}

fn prev_id(session: &str) -> String {
    id::ResponseRef {
        session_id: session.into(),
        deployment: "agent/0".into(),
        request_id: "r0".into(),
    }
    .encode()
}

#[test]
fn inputs_become_the_canonical_conversation() {
    let call_id = "call_ab1_xyz";
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (json!({"input": "hi"}), vec![("user", "hi")]),
        (
            json!({"input": "hi", "instructions": "be terse"}),
            vec![("system", "be terse"), ("user", "hi")],
        ),
        // The Agents SDK's items: no `type`, content a string.
        (
            json!({"input": [{"role": "user", "content": "hi"}]}),
            vec![("user", "hi")],
        ),
        (
            json!({"input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                 "content": [{"type": "output_text", "text": "b", "annotations": []}]},
                {"role": "developer", "content": "d"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"role": "user", "content": [{"type": "input_text", "text": "c"}, {"type": "input_image", "image_url": "x"}]}
            ]}),
            vec![
                ("user", "a"),
                ("assistant", "b"),
                ("developer", "d"),
                ("user", "c"),
            ],
        ),
        (
            json!({"input": [
                {"type": "function_call", "call_id": call_id, "name": "g__f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": call_id, "output": "sunny"}
            ]}),
            vec![("assistant", ""), ("tool", "sunny")],
        ),
    ];
    for (mut body, want) in cases {
        body["model"] = json!("agent");
        let p = parse(body.clone()).unwrap();
        assert_eq!(p.model, "agent");
        let got: Vec<(String, String)> = p
            .request
            .messages
            .iter()
            .map(|m| (m.role.clone(), m.text()))
            .collect();
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(r, t)| (r.into(), t.into()))
            .collect();
        assert_eq!(got, want, "{body}");
        if let Some(m) = p.request.messages.iter().find(|m| m.role == "tool") {
            assert_eq!(m.tool_call_id.as_deref(), Some(call_id));
            let prev = &p.request.messages[p.request.messages.len() - 2];
            assert_eq!(prev.tool_calls.as_ref().unwrap()[0].id, call_id);
        }
    }
}

#[test]
fn format_fields_are_accepted_and_not_sent() {
    let p = parse(json!({
        "model": "agent", "input": "hi", "stream": true, "store": true, "tools": [], "include": [],
        "tool_choice": "auto", "temperature": 0.3, "top_p": 1, "max_output_tokens": 9, "user": "u",
        "metadata": {"k": "v"}, "parallel_tool_calls": false, "truncation": "auto",
        "include_trace": true, "sessionState": {"sessionAttributes": {"a": "b"}}
    }))
    .unwrap();
    let mut keys: Vec<&str> = p.request.params.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["include_trace", "sessionState"]);
    assert!(p.request.options.stream && p.request.options.include_trace);
    assert_eq!(p.ctx.echo.to_map()["metadata"], json!({"k": "v"}));
    assert_eq!(p.ctx.echo.to_map()["max_output_tokens"], json!(9));
    assert_eq!(p.ctx.echo.to_map()["tools"], json!([]));
}

#[test]
fn previous_response_id_pins_its_session() {
    let p = parse(
        json!({"model": "agent", "input": "more", "previous_response_id": prev_id("sess-9")}),
    )
    .unwrap();
    assert_eq!(p.request.pinned_session(), Some("sess-9"));
    assert_eq!(
        p.ctx.echo.to_map()["previous_response_id"],
        json!(prev_id("sess-9"))
    );
    // The same session given twice is fine; a different one is refused.
    let same = json!({"model": "agent", "input": "x", "previous_response_id": prev_id("s1"), "session_id": "s1"});
    assert!(parse(same).is_ok());
    let other = json!({"model": "agent", "input": "x", "previous_response_id": prev_id("s1"), "session_id": "s2"});
    assert_eq!(
        parse(other).unwrap_err().body()["error"]["param"],
        "previous_response_id"
    );
}

#[test]
fn refusals_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"input": "x"}), "model"),
        (json!({"model": "agent"}), "input"),
        (json!({"model": "agent", "input": 3}), "input"),
        (json!({"model": "agent", "input": [3]}), "input[0]"),
        (
            json!({"model": "agent", "input": [{"content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"model": "agent", "input": [{"role": "tool", "content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"model": "agent", "input": [{"type": "item_reference", "id": "x"}]}),
            "input[0].type",
        ),
        (
            json!({"model": "agent", "input": [{"type": "function_call_output", "output": "x"}]}),
            "input[0].call_id",
        ),
        (
            json!({"model": "agent", "input": "x", "instructions": 1}),
            "instructions",
        ),
        (
            json!({"model": "agent", "input": "x", "stream": "yes"}),
            "stream",
        ),
        (
            json!({"model": "agent", "input": "x", "previous_response_id": "resp_nope"}),
            "previous_response_id",
        ),
        (
            json!({"model": "agent", "input": "x", "background": true}),
            "background",
        ),
        (
            json!({"model": "agent", "input": "x", "conversation": "conv_1"}),
            "conversation",
        ),
        (
            json!({"model": "agent", "input": "x", "aws_secret_access_key": "k"}),
            "aws_secret_access_key",
        ),
    ];
    for (body, param) in cases {
        let e = parse(body.clone()).unwrap_err();
        assert_eq!(e.status(), 400, "{body}");
        assert_eq!(e.body()["error"]["param"], param, "{body}");
    }
}

fn end(finish: Finish, usage_reported: bool) -> Piece {
    let mut usage = Usage::default();
    if usage_reported {
        usage.add(5, 3);
    }
    Piece::End(Ending {
        finish,
        outcome: Outcome { usage, cost: 0.1 },
        usage_reported,
    })
}

fn call() -> ToolCall {
    ToolCall {
        id: "call_ab1_abc".into(),
        kind: "function".into(),
        function: FunctionCall {
            name: "g__f".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        },
    }
}

fn citation() -> Piece {
    Piece::Citations {
        annotations: vec![agentbridge::openai::Annotation {
            kind: "url_citation".into(),
            url_citation: OaiCitation {
                url: "s3://b/doc.pdf".into(),
                title: "doc.pdf".into(),
                start_index: 0,
                end_index: 2,
            },
        }],
        raw: vec![],
    }
}

async fn fold(pieces: Vec<Piece>, include_trace: bool) -> Value {
    let mut req = AgentRequest::new(vec![]);
    req.options.include_trace = include_trace;
    let answer = Answer {
        session_id: "sess-1".into(),
        pieces: Box::pin(futures::stream::iter(pieces.into_iter().map(Ok))),
    };
    let done = Responses::complete(
        Ctx {
            echo: types::Echo::new(&Map::new()),
        },
        meta(),
        &req,
        answer,
    )
    .await
    .unwrap();
    serde_json::from_slice(&done.body).unwrap()
}

#[tokio::test]
async fn answers_render_as_response_objects() {
    let r = fold(
        vec![
            Piece::Text("Hi".into()),
            Piece::Text(" there".into()),
            citation(),
            end(Finish::Stop, true),
        ],
        false,
    )
    .await;
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    let rref = id::ResponseRef::decode(r["id"].as_str().unwrap(), "id").unwrap();
    assert_eq!(
        (rref.session_id.as_str(), rref.deployment.as_str()),
        ("sess-1", "agent/0")
    );
    assert_eq!(r["output"][0]["type"], "message");
    assert_eq!(r["output"][0]["content"][0]["text"], "Hi there");
    assert_eq!(
        r["output"][0]["content"][0]["annotations"][0],
        json!({"type": "url_citation", "url": "s3://b/doc.pdf", "title": "doc.pdf", "start_index": 0, "end_index": 2})
    );
    assert_eq!(r["usage"]["input_tokens"], 5);
    assert_eq!(r["usage"]["total_tokens"], 8);
    assert_eq!(r["session_id"], "sess-1");
    assert!(r.get("trace").is_none());
    // The request's fields, echoed with the format's defaults.
    assert_eq!(r["tools"], json!([]));
    assert_eq!(r["tool_choice"], "auto");
    assert_eq!(r["instructions"], Value::Null);
    assert_eq!(r["text"], json!({"format": {"type": "text"}}));

    let r = fold(
        vec![
            Piece::ToolCalls(vec![call()]),
            end(Finish::ToolCalls, false),
        ],
        true,
    )
    .await;
    assert_eq!(r["output"].as_array().unwrap().len(), 1);
    assert_eq!(r["output"][0]["type"], "function_call");
    assert_eq!(r["output"][0]["call_id"], "call_ab1_abc");
    assert_eq!(r["output"][0]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(r["usage"], Value::Null, "no usage reported, none invented");
    assert_eq!(r["trace"], json!([]));

    let r = fold(
        vec![
            Piece::Text("blocked".into()),
            end(Finish::ContentFilter, true),
        ],
        false,
    )
    .await;
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"], json!({"reason": "content_filter"}));
}

/// The events of a stream: (name, data).
fn events(out: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .split_terminator("\n\n")
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            (
                name.strip_prefix("event: ").unwrap().to_string(),
                serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn streams_follow_the_documented_sequence() {
    let req = AgentRequest::new(vec![]);
    let mut w = Responses::encoder(
        Ctx {
            echo: types::Echo::new(&Map::new()),
        },
        meta(),
        &req,
        "sess-1",
    );
    let mut out = Vec::new();
    for p in [
        Piece::Text("Hi".into()),
        citation(),
        Piece::ToolCalls(vec![call()]),
        end(Finish::ToolCalls, true),
    ] {
        w.piece(p, &mut out);
    }
    let ev = events(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.annotation.added",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in ev.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    assert_eq!(ev[4].1["delta"], "Hi");
    assert_eq!(ev[6].1["text"], "Hi");
    let done = &ev[13].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hi");
    assert_eq!(done["output"][1]["call_id"], "call_ab1_abc");
    assert_eq!(done["usage"]["output_tokens"], 3);
    assert_eq!(ev[0].1["response"]["id"], done["id"]);
    for e in [&ev[0].1["response"], &ev[1].1["response"], done] {
        assert_eq!(
            e["metadata"],
            json!({}),
            "echoed fields in every response object"
        );
        assert_eq!(e["truncation"], "disabled");
    }
    assert_eq!(ev[0].1["response"]["status"], "in_progress");
    assert_eq!(ev[0].1["response"]["output"], json!([]));

    let mut w = Responses::encoder(Ctx::default(), meta(), &req, "sess-1");
    let mut out = Vec::new();
    w.piece(Piece::Text("Hi".into()), &mut out);
    w.error(&agentbridge::Error::Timeout("slow".into()), &mut out);
    let ev = events(&out);
    let n = ev.len();
    assert_eq!(ev[n - 2].0, "response.failed");
    assert_eq!(ev[n - 2].1["response"]["status"], "failed");
    assert_eq!(ev[n - 2].1["response"]["error"]["code"], "server_error");
    assert_eq!(
        ev[n - 2].1["response"]["error"]["message"],
        "upstream timeout: slow"
    );
    assert_eq!(ev[n - 1].0, "error");
    assert_eq!(ev[n - 1].1["code"], "upstream_timeout");
    assert_eq!(ev[n - 1].1["sequence_number"], n - 1);
}

/// A message's events in full, with text that needs escaping (the text path writes its
/// events from pieces of JSON made once per message: every member must still be there,
/// once, with the value the format gives it).
#[test]
fn a_message_s_events_carry_every_member() {
    let req = AgentRequest::new(vec![]);
    let mut w = Responses::encoder(Ctx::default(), meta(), &req, "sess-1");
    let mut out = Vec::new();
    let (a, b) = ("Say \"hi\"\n\\ ", "caf\u{e9} \u{1}\u{2028}");
    for p in [
        Piece::Text(a.into()),
        citation(),
        Piece::Text(b.into()),
        end(Finish::Stop, true),
    ] {
        w.piece(p, &mut out);
    }
    let ev = events(&out);
    let id = ev[2].1["item"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("msg_"), "{id}");
    let text = format!("{a}{b}");
    let annotation = json!({"type": "url_citation", "url": "s3://b/doc.pdf", "title": "doc.pdf",
        "start_index": 0, "end_index": 2});
    let at = |n: usize| json!({"item_id": id, "output_index": 0, "content_index": 0, "sequence_number": n});
    let with = |n: usize, kind: &str, more: Value| {
        let mut v = at(n);
        v["type"] = json!(kind);
        for (k, x) in more.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let want = [
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
            "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant",
                "content": []}}),
        with(
            3,
            "response.content_part.added",
            json!({"part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
        ),
        with(
            4,
            "response.output_text.delta",
            json!({"delta": a, "logprobs": []}),
        ),
        with(
            5,
            "response.output_text.annotation.added",
            json!({"annotation_index": 0, "annotation": annotation}),
        ),
        with(
            6,
            "response.output_text.delta",
            json!({"delta": b, "logprobs": []}),
        ),
        with(
            7,
            "response.output_text.done",
            json!({"text": text, "logprobs": []}),
        ),
        with(
            8,
            "response.content_part.done",
            json!({"part": {"type": "output_text", "text": text, "annotations": [annotation],
                "logprobs": []}}),
        ),
        json!({"type": "response.output_item.done", "sequence_number": 9, "output_index": 0,
            "item": {"id": id, "type": "message", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [annotation],
                    "logprobs": []}]}}),
    ];
    for (k, want) in want.iter().enumerate() {
        let (name, got) = &ev[k + 2];
        assert_eq!(got, want, "event {name}");
        assert_eq!(name, want["type"].as_str().unwrap());
    }
    assert_eq!(ev[10].0, "response.completed");
    assert_eq!(ev[10].1["response"]["output"][0], want[7]["item"]);
    assert_eq!(ev.len(), 11);
}
