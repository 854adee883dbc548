use super::*;
use crate::canonical::{Finish, Outcome};
use crate::error::AwsErrorKind;

fn events(items: Vec<Result<AgentEvent>>) -> EventStream {
    Box::pin(futures::stream::iter(items))
}

fn chunk(s: &str) -> Result<AgentEvent> {
    Ok(AgentEvent::Chunk {
        bytes: s.as_bytes().to_vec(),
        attribution: None,
    })
}

fn usage() -> Result<AgentEvent> {
    Ok(AgentEvent::trace(
        &json!({"trace": {"orchestrationTrace": {"modelInvocationOutput": {"metadata": {"usage": {"inputTokens": 10, "outputTokens": 5}}}}}}),
    ))
}

fn throttled() -> Result<AgentEvent> {
    Err(Error::Aws {
        kind: AwsErrorKind::Throttling,
        code: "ThrottlingException".into(),
        message: "slow".into(),
        retry_after: None,
    })
}

fn opts(stream: bool, include_usage: bool) -> AnswerOptions {
    AnswerOptions {
        stream,
        include_usage,
        include_trace: false,
    }
}

/// A Bedrock Agents answer on session `sess` made of these events.
fn answer(o: AnswerOptions, items: Vec<Result<AgentEvent>>) -> Answer {
    crate::bedrock_agent::answer("sess".into(), o, None, events(items))
}

/// An answer made of these pieces directly (as any target could send them).
fn pieces(items: Vec<Piece>) -> Answer {
    Answer {
        session_id: "s".into(),
        pieces: Box::pin(futures::stream::iter(items.into_iter().map(Ok))),
    }
}

#[tokio::test]
async fn fold_concatenates_chunks_and_sums_usage() {
    let c = fold(
        ResponseMeta::new("my-agent"),
        answer(
            opts(false, false),
            vec![usage(), chunk("Hello"), chunk(" world"), usage()],
        ),
        opts(false, false),
    )
    .await
    .unwrap();
    assert_eq!(c.model, "my-agent");
    assert_eq!(c.object, "chat.completion");
    assert_eq!(c.choices[0].message.content.as_deref(), Some("Hello world"));
    assert_eq!(c.choices[0].finish_reason, "stop");
    assert_eq!(c.usage.map(|u| u.total_tokens), Some(30));
    assert_eq!(c.session_id, "sess");
    assert!(c.trace.is_none());
}

#[tokio::test]
async fn fold_fails_on_an_exception_event() {
    let e = fold(
        ResponseMeta::new("m"),
        answer(opts(false, false), vec![chunk("partial"), throttled()]),
        opts(false, false),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status_code(), 429);
}

#[tokio::test]
async fn chunks_carry_role_first_finish_last_and_one_id() {
    let s = chunks(
        ResponseMeta::new("m"),
        answer(opts(true, true), vec![usage(), chunk("a"), chunk("b")]),
        opts(true, true),
    );
    let handle = s.outcome_handle();
    let out: Vec<ChatChunk> = s.map(|c| c.unwrap()).collect().await;
    assert_eq!(out.len(), 4);
    assert_eq!(out[0].choices[0].delta.role.as_deref(), Some("assistant"));
    assert_eq!(out[0].session_id.as_deref(), Some("sess"));
    assert_eq!(out[0].choices[0].delta.content.as_deref(), Some("a"));
    assert!(out[1].choices[0].delta.role.is_none());
    assert_eq!(out[2].choices[0].finish_reason.as_deref(), Some("stop"));
    assert!(out[3].choices.is_empty());
    assert_eq!(out[3].usage.map(|u| u.total_tokens), Some(15));
    assert!(
        out.iter()
            .all(|c| c.id == out[0].id && c.object == "chat.completion.chunk")
    );
    assert_eq!(
        handle.lock().unwrap().map(|o| o.usage.total_tokens),
        Some(15)
    );
}

#[tokio::test]
async fn midstream_exception_ends_stream_with_an_error_not_a_stop() {
    let s = chunks(
        ResponseMeta::new("m"),
        answer(
            opts(true, false),
            vec![chunk("a"), throttled(), chunk("never")],
        ),
        opts(true, false),
    );
    let out: Vec<Result<ChatChunk>> = s.collect().await;
    assert_eq!(out.len(), 2);
    assert!(out[0].is_ok());
    assert!(matches!(
        out[1],
        Err(Error::Aws {
            kind: AwsErrorKind::Throttling,
            ..
        })
    ));
}

#[tokio::test]
async fn return_of_control_streams_tool_calls() {
    let rc = Ok(AgentEvent::ReturnControl(
        json!({"invocationId": "i", "invocationInputs": [
        {"functionInvocationInput": {"actionGroup": "g", "function": "f", "parameters": []}}]}),
    ));
    let out: Vec<ChatChunk> = chunks(
        ResponseMeta::new("m"),
        answer(opts(true, false), vec![rc]),
        opts(true, false),
    )
    .map(|c| c.unwrap())
    .collect()
    .await;
    let calls = out[0].choices[0].delta.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["function"]["name"], "g__f");
    assert_eq!(
        out.last().unwrap().choices[0].finish_reason.as_deref(),
        Some("tool_calls")
    );
}

#[tokio::test]
async fn unreported_usage_is_left_out_not_invented() {
    let end = Piece::End(Ending {
        finish: Finish::Stop,
        outcome: Outcome::default(),
        usage_reported: false,
    });
    let c = fold(
        ResponseMeta::new("m"),
        pieces(vec![Piece::Text("hi".into()), end.clone()]),
        opts(false, false),
    )
    .await
    .unwrap();
    assert_eq!(c.usage, None);
    assert!(!serde_json::to_string(&c).unwrap().contains("usage"));
    let out: Vec<ChatChunk> = chunks(
        ResponseMeta::new("m"),
        pieces(vec![Piece::Text("hi".into()), end]),
        opts(true, true),
    )
    .map(|c| c.unwrap())
    .collect()
    .await;
    assert_eq!(out.len(), 2, "text and finish, no usage chunk: {out:?}");
    assert!(out.iter().all(|c| c.usage.is_none()));
}

#[tokio::test]
async fn an_answer_without_its_end_is_an_error_on_both_paths() {
    let e = fold(
        ResponseMeta::new("m"),
        pieces(vec![Piece::Text("cut".into())]),
        opts(false, false),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status_code(), 502);
    let out: Vec<Result<ChatChunk>> = chunks(
        ResponseMeta::new("m"),
        pieces(vec![Piece::Text("cut".into())]),
        opts(true, false),
    )
    .collect()
    .await;
    assert!(out[0].is_ok());
    assert!(matches!(out.last(), Some(Err(Error::Decode(_)))));
}
