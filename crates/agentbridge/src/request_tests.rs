use super::*;
use crate::openai::ChatRequest;
use crate::return_control::tool_calls;

fn agent() -> AgentModel {
    AgentModel::parse("bedrock/agent/L1RT58GYRW/MFPSBCXYTW").unwrap()
}

fn req(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

fn build(v: Value) -> Result<(InvokeAgentRequest, AnswerOptions)> {
    build_with(v, &Map::new())
}

/// Through the Chat door's parse (which reads the options), then the transform.
fn build_with(
    v: Value,
    extras: &Map<String, Value>,
) -> Result<(InvokeAgentRequest, AnswerOptions)> {
    let a = crate::completion::agent_request(req(v))?;
    Ok((to_invoke_agent(&agent(), &a, extras)?, a.options))
}

#[test]
fn last_user_message_is_the_input_and_trace_is_on() {
    let (r, o) =
        build(json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})).unwrap();
    assert_eq!(r.body["inputText"], "Hi");
    assert_eq!(r.body["enableTrace"], true);
    assert!(!r.body.contains_key("sessionState"));
    assert!(is_session_id(&r.session_id));
    assert_eq!(o, AnswerOptions::default());
}

#[test]
fn content_parts_are_joined() {
    let (r, _) = build(json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "b"}]}]}))
    .unwrap();
    assert_eq!(r.body["inputText"], "a\nb");
}

#[test]
fn earlier_turns_become_conversation_history_and_system_a_prompt_attribute() {
    let (r, _) = build(json!({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What did I say?"}]}))
    .unwrap();
    assert_eq!(r.body["inputText"], "What did I say?");
    assert_eq!(
        r.body["sessionState"]["conversationHistory"]["messages"],
        json!([{"role": "user", "content": [{"text": "My name is Ada."}]},
               {"role": "assistant", "content": [{"text": "Hello Ada."}]}])
    );
    assert_eq!(
        r.body["sessionState"]["promptSessionAttributes"]["system"],
        "Be brief."
    );
}

#[test]
fn custom_params_pass_through_and_gateway_params_do_not() {
    let mut extras = Map::new();
    extras.insert("invocationId".into(), json!("from-config"));
    extras.insert("memoryId".into(), json!("mem-1"));
    extras.insert("aws_access_key_id".into(), json!("AKIA..."));
    let (r, o) = build_with(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "invocationId": "my-test-invocation-id", "temperature": 0.2, "session_id": "sess-42",
            "include_trace": true, "api_base": "http://evil", "sessionState": {"sessionAttributes": {"k": "v"}},
            "promptCreationConfigurations": {"previousConversationTurnsToInclude": 2}}),
        &extras,
    )
    .unwrap();
    assert_eq!(r.body["invocationId"], "my-test-invocation-id");
    assert_eq!(r.body["memoryId"], "mem-1");
    assert_eq!(r.body["sessionState"]["sessionAttributes"]["k"], "v");
    assert_eq!(
        r.body["promptCreationConfigurations"]["previousConversationTurnsToInclude"],
        2
    );
    for k in [
        "temperature",
        "session_id",
        "include_trace",
        "api_base",
        "aws_access_key_id",
        "model",
        "messages",
    ] {
        assert!(!r.body.contains_key(k), "{k} leaked");
    }
    assert_eq!(r.session_id, "sess-42");
    assert!(o.include_trace);
}

#[test]
fn litellm_session_spelling_pins_the_session() {
    let (r, _) = build(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "sessionID": "abc-1"}),
    )
    .unwrap();
    assert_eq!(r.session_id, "abc-1");
    let e = build(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "session_id": "bad id"}))
        .unwrap_err();
    assert_eq!(e.param(), Some("session_id"));
}

#[test]
fn streaming_asks_for_the_final_response_stream() {
    let (r, o) = build(
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "streamingConfigurations": {"applyGuardrailInterval": 50},
        "messages": [{"role": "user", "content": "x"}]}),
    )
    .unwrap();
    assert_eq!(
        r.body["streamingConfigurations"],
        json!({"applyGuardrailInterval": 50, "streamFinalResponse": true})
    );
    assert!(o.stream && o.include_usage);
}

#[test]
fn tool_messages_become_return_control_results_on_the_same_session() {
    let payload = json!({"invocationId": "inv-9", "invocationInputs": [
        {"functionInvocationInput": {"actionGroup": "weather", "function": "get_forecast", "parameters": []}}]});
    let calls = tool_calls("sess-7", &payload).unwrap();
    let (r, _) = build(json!({"model": "m", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"}]}))
    .unwrap();
    assert_eq!(r.session_id, "sess-7");
    assert!(!r.body.contains_key("inputText"));
    assert_eq!(r.body["sessionState"]["invocationId"], "inv-9");
    assert_eq!(
        r.body["sessionState"]["returnControlInvocationResults"][0]["functionResult"]["responseBody"]
            ["TEXT"]["body"],
        "sunny"
    );
}

#[test]
fn bad_input_is_a_400_naming_the_field() {
    let cases = [
        (json!({"model": "m", "messages": []}), "messages"),
        (
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "content": "x"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_1", "content": "y"}]}),
            "messages[1].tool_call_id",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "sessionState": "no"}),
            "sessionState",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "include_trace": "yes"}),
            "include_trace",
        ),
    ];
    for (v, param) in cases {
        let e = build(v.clone()).unwrap_err();
        assert_eq!(e.status_code(), 400, "{v}");
        assert_eq!(e.param(), Some(param), "{v}: {e}");
    }
}
