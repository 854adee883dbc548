//! The Messages door's parse, rendering and errors, as tables of cases.

use super::*;
use crate::sse::SseEncoder;
use agentbridge::canonical::{Ending, Finish, Outcome};
use agentbridge::openai::{FunctionCall, ToolCall, UrlCitation, Usage};
use serde_json::json;

fn parse(body: Value) -> Result<Parsed<()>> {
    Messages::parse(body.to_string().as_bytes(), &HeaderMap::new())
}

fn meta() -> AnswerMeta {
    AnswerMeta {
        request_id: "req-1".into(),
        model: "agent".into(),
        created: 7,
        deployment: "agent/0".into(),
    }
}

#[test]
fn messages_become_the_canonical_conversation() {
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            vec![("user", "hi")],
        ),
        (
            json!({"system": "terse", "messages": [{"role": "user", "content": "hi"}]}),
            vec![("system", "terse"), ("user", "hi")],
        ),
        (
            json!({"system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image", "source": {}}]}]}),
            vec![("system", "a\nb"), ("user", "x")],
        ),
        (
            json!({"messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "call_ab1_x", "name": "g__f", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_ab1_x",
                    "content": [{"type": "text", "text": "sunny"}]}]}
            ]}),
            vec![
                ("user", "weather?"),
                ("assistant", "checking"),
                ("tool", "sunny"),
            ],
        ),
    ];
    for (mut body, want) in cases {
        body["model"] = json!("agent");
        body["max_tokens"] = json!(1024);
        let p = parse(body.clone()).unwrap();
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
        assert!(p.request.params.is_empty(), "{body}");
        if let Some(tool) = p.request.messages.iter().find(|m| m.role == "tool") {
            assert_eq!(tool.tool_call_id.as_deref(), Some("call_ab1_x"));
            let calls = p.request.messages[1].tool_calls.as_ref().unwrap();
            assert_eq!(calls[0].id, "call_ab1_x");
            assert_eq!(calls[0].function.name, "g__f");
            assert_eq!(
                serde_json::from_str::<Value>(&calls[0].function.arguments).unwrap(),
                json!({"city": "Paris"})
            );
        }
    }
}

#[test]
fn refusals_name_the_field_in_anthropics_shape() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"model": "agent", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens",
        ),
        (
            json!({"model": "agent", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens",
        ),
        (json!({"model": "agent", "max_tokens": 5}), "messages"),
        (
            json!({"model": "agent", "max_tokens": 5, "messages": []}),
            "messages",
        ),
        (
            json!({"model": "agent", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "agent", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"model": "agent", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}),
            "messages[0].content[0].tool_use_id",
        ),
    ];
    for (body, param) in cases {
        let e = parse(body.clone()).unwrap_err();
        assert_eq!(e.body()["error"]["param"], param, "{body}");
        let r = Messages::error_response(e);
        assert_eq!(r.status(), 400, "{body}");
    }
}

#[tokio::test]
async fn every_error_has_anthropics_status_type_and_shape() {
    use agentbridge::AwsErrorKind;
    let aws = |kind| agentbridge::Error::Aws {
        kind,
        code: "X".into(),
        message: "m".into(),
        retry_after: None,
    };
    let cases: Vec<(ProxyError, u16, &str)> = vec![
        (
            ProxyError::Unauthorized("k".into()),
            401,
            "authentication_error",
        ),
        (ProxyError::Forbidden("k".into()), 403, "permission_error"),
        (
            ProxyError::ModelNotFound {
                model: "m".into(),
                served: vec![],
            },
            404,
            "not_found_error",
        ),
        (ProxyError::NotFound("x".into()), 404, "not_found_error"),
        (
            ProxyError::BodyTooLarge { limit: 1 },
            413,
            "request_too_large",
        ),
        (
            ProxyError::RateLimited {
                message: "m".into(),
                retry_after: Some(3),
                retry: true,
            },
            429,
            "rate_limit_error",
        ),
        (
            ProxyError::RateLimited {
                message: "m".into(),
                retry_after: None,
                retry: false,
            },
            402,
            "billing_error",
        ),
        (ProxyError::Overloaded(1), 529, "overloaded_error"),
        (
            ProxyError::Unavailable("db".into()),
            529,
            "overloaded_error",
        ),
        (ProxyError::Internal("x".into()), 500, "api_error"),
        (
            aws(AwsErrorKind::Throttling).into(),
            429,
            "rate_limit_error",
        ),
        (
            aws(AwsErrorKind::AccessDenied).into(),
            403,
            "permission_error",
        ),
        (
            aws(AwsErrorKind::Validation).into(),
            400,
            "invalid_request_error",
        ),
        (aws(AwsErrorKind::DependencyFailed).into(), 500, "api_error"),
        (
            aws(AwsErrorKind::ModelNotReady).into(),
            529,
            "overloaded_error",
        ),
        (aws(AwsErrorKind::Conflict).into(), 409, "conflict_error"),
        (
            agentbridge::Error::Timeout("t".into()).into(),
            504,
            "timeout_error",
        ),
        (
            agentbridge::Error::Connect("c".into()).into(),
            500,
            "api_error",
        ),
    ];
    for (e, status, kind) in cases {
        let what = format!("{e:?}");
        let r = Messages::error_response(e);
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert!(r.headers().contains_key("x-should-retry"), "{what}");
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        let j: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(j["type"], "error", "{what}");
        assert_eq!(j["error"]["type"], kind, "{what}");
        assert!(
            j["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
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
            url_citation: UrlCitation {
                url: "s3://b/doc.pdf".into(),
                title: "doc.pdf".into(),
                start_index: 3,
                end_index: 8,
            },
        }],
        raw: vec![],
    }
}

async fn fold(pieces: Vec<Piece>) -> Value {
    let req = AgentRequest::new(vec![]);
    let answer = Answer {
        session_id: "sess-1".into(),
        pieces: Box::pin(futures::stream::iter(pieces.into_iter().map(Ok))),
    };
    let done = Messages::complete((), meta(), &req, answer).await.unwrap();
    serde_json::from_slice(&done.body).unwrap()
}

#[tokio::test]
async fn answers_render_as_messages() {
    let cases: Vec<(Vec<Piece>, &str, Value, Value)> = vec![
        (
            vec![
                Piece::Text("Q3 revenue".into()),
                citation(),
                end(Finish::Stop, true),
            ],
            "end_turn",
            json!([{"type": "text", "text": "Q3 revenue", "citations": [{"type": "web_search_result_location",
                "url": "s3://b/doc.pdf", "title": "doc.pdf", "cited_text": "reven", "encrypted_index": ""}]}]),
            json!({"input_tokens": 5, "output_tokens": 3}),
        ),
        (
            vec![Piece::ToolCalls(vec![call()]), end(Finish::ToolCalls, true)],
            "tool_use",
            json!([{"type": "tool_use", "id": "call_ab1_abc", "name": "g__f", "input": {"city": "Paris"}}]),
            json!({"input_tokens": 5, "output_tokens": 3}),
        ),
        (
            vec![
                Piece::Text("blocked".into()),
                end(Finish::ContentFilter, false),
            ],
            "refusal",
            json!([{"type": "text", "text": "blocked", "citations": null}]),
            json!({"input_tokens": 0, "output_tokens": 0}),
        ),
    ];
    for (pieces, stop, content, usage) in cases {
        let m = fold(pieces).await;
        assert_eq!(m["type"], "message");
        assert_eq!(m["role"], "assistant");
        assert_eq!(m["stop_reason"], stop);
        assert_eq!(m["content"], content);
        assert_eq!(m["usage"], usage);
        assert_eq!(m["session_id"], "sess-1");
        let unreported = usage["input_tokens"] == 0;
        assert_eq!(m.get("usage_reported").is_some(), unreported, "{m}");
    }
}

#[test]
fn streams_name_every_event_and_end_with_message_stop() {
    let req = AgentRequest::new(vec![]);
    let mut w = Messages::encoder((), meta(), &req, "sess-1");
    let mut out = Vec::new();
    for p in [
        Piece::Text("Hi".into()),
        citation(),
        Piece::ToolCalls(vec![call()]),
        end(Finish::ToolCalls, true),
    ] {
        w.piece(p, &mut out);
    }
    let text = String::from_utf8(out).unwrap();
    let ev: Vec<(&str, Value)> = text
        .split_terminator("\n\n")
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            (
                name.strip_prefix("event: ").unwrap(),
                serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = ev.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for (name, data) in &ev {
        assert_eq!(data["type"], *name);
    }
    assert_eq!(ev[0].1["message"]["session_id"], "sess-1");
    assert_eq!(
        ev[2].1["delta"],
        json!({"type": "text_delta", "text": "Hi"})
    );
    assert_eq!(ev[3].1["delta"]["type"], "citations_delta");
    assert_eq!(ev[5].1["index"], 1);
    assert_eq!(
        ev[5].1["content_block"],
        json!({"type": "tool_use", "id": "call_ab1_abc", "name": "g__f", "input": {}})
    );
    assert_eq!(
        ev[6].1["delta"],
        json!({"type": "input_json_delta", "partial_json": r#"{"city":"Paris"}"#})
    );
    assert_eq!(ev[8].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(ev[8].1["usage"]["output_tokens"], 3);
    assert_eq!(w.keepalive(), Some(stream::PING));

    let mut out = Vec::new();
    let mut w = Messages::encoder((), meta(), &req, "sess-1");
    w.piece(Piece::Text("Hi".into()), &mut out);
    w.error(
        &agentbridge::Error::Aws {
            kind: agentbridge::AwsErrorKind::Throttling,
            code: "ThrottlingException".into(),
            message: "slow".into(),
            retry_after: None,
        },
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    let last = text.split_terminator("\n\n").last().unwrap();
    let (name, data) = last.split_once('\n').unwrap();
    assert_eq!(name, "event: error");
    let j: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(j["type"], "error");
    assert_eq!(j["error"]["type"], "rate_limit_error");
}
