"""What comes back reads like LiteLLM's and OpenAI's objects, and the conversation features
(history, sessions, tool calls, citations, files, per-call settings) work through it."""
import json
import uuid

import openai.types.chat as oa
import pytest

import agentbridge
from agentbridge import completion
from conftest import MODEL, TEST_AK, TEST_SK, user


def ask(stream, messages, **kw):
    """The answer's text, finish reason, tool calls and annotations, streamed or not."""
    if not stream:
        r = completion(model=MODEL, messages=messages, **kw)
        m = r.choices[0].message
        return m.content, r.choices[0].finish_reason, m.tool_calls or [], m.annotations or [], r
    text, finish, calls, anns = "", None, [], []
    for chunk in completion(model=MODEL, messages=messages, stream=True, **kw):
        for ch in chunk.choices:
            text += ch.delta.content or ""
            calls += ch.delta.tool_calls or []
            anns += ch.delta.get("annotations") or []
            finish = ch.finish_reason or finish
    return text, finish, calls, anns, None


def test_response_has_litellm_and_openai_shape(emu):
    r = completion(model=MODEL, messages=user("hello"))
    assert isinstance(r, agentbridge.ModelResponse)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == MODEL
    assert r.choices[0].message.content.endswith("received: hello")
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.response_cost > 0 and r._hidden_params["response_cost"] == r.response_cost
    assert r["choices"][0]["message"]["content"] == r.choices[0].message.content
    dumped = r.model_dump()
    assert type(dumped) is dict and type(dumped["choices"][0]["message"]) is dict
    assert json.loads(r.model_dump_json()) == dumped
    assert "response_cost" not in dumped
    # The OpenAI SDK's own model accepts it unchanged.
    parsed = oa.ChatCompletion.model_validate(dumped)
    assert parsed.choices[0].message.content == r.choices[0].message.content
    assert parsed.usage.prompt_tokens == r.usage.prompt_tokens


def test_chunks_have_openai_shape_and_arrive_in_pieces(emu):
    chunks = list(completion(model=MODEL, messages=user("emulate:big=3000 please"), stream=True))
    assert all(isinstance(c, agentbridge.ModelResponseStream) for c in chunks)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        oa.ChatCompletionChunk.model_validate(c.model_dump())


def test_stream_reports_usage_and_cost_at_the_end(emu):
    stream = completion(model=MODEL, messages=user("hi"), stream=True, stream_options={"include_usage": True})
    assert stream.response_cost is None
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert stream.response_cost > 0


@pytest.mark.parametrize("stream", [False, True])
def test_history_reaches_the_agent(emu, recorded, stream):
    text, *_ = ask(stream, [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "I like tea."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What did I say?"},
    ])
    assert text == 'You said: "My name is Ada."; "I like tea."'
    state = recorded()[-1]["body"]["sessionState"]
    assert len(state["conversationHistory"]["messages"]) == 4
    assert state["promptSessionAttributes"]["system"] == "You are terse."


def test_pinned_session_continues_and_comes_back(emu, recorded):
    sid = f"py-{uuid.uuid4().hex[:12]}"
    r = completion(model=MODEL, messages=user("remember blue"), session_id=sid)
    assert r.session_id == sid and recorded()[-1]["sessionId"] == sid
    r2 = completion(model=MODEL, messages=user("What did I say?"), sessionID=sid)
    assert "remember blue" in r2.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(emu, recorded, stream):
    question = {"role": "user", "content": "Weather in Paris? emulate:return_control"}
    text, finish, calls, _, r = ask(stream, [question])
    assert finish == "tool_calls" and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "WeatherAPI__get_forecast"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}
    # The assistant message goes back as it came (OpenAI's pattern), then the tool's output.
    assistant = r.choices[0].message if r is not None else {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": call.id, "type": "function", "function": dict(call.function)}]}
    follow, finish, *_ = ask(stream, [question, assistant,
                                      {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24C"}])
    assert follow == "The tool returned: sunny, 24C" and finish == "stop"
    result = recorded()[-1]["body"]["sessionState"]["returnControlInvocationResults"][0]
    assert result["functionResult"]["function"] == "get_forecast"


@pytest.mark.parametrize("stream", [False, True])
def test_citations_are_annotations(emu, stream):
    text, _, _, anns, r = ask(stream, user("How did Q3 go? emulate:citations"))
    urls = [a.url_citation.url for a in anns]
    assert "s3://emulator-kb/reports/q3-2026.pdf" in urls and "https://example.com/churn" in urls
    first = anns[0].url_citation
    assert anns[0].type == "url_citation"
    assert text[first.start_index:first.end_index] == "Q3 revenue grew 12% year over year."
    if r is not None:
        raw = r.choices[0].message.citations
        assert raw[0]["retrievedReferences"][0]["location"]["type"] == "S3"


def test_output_files_are_exposed(emu):
    r = completion(model=MODEL, messages=user("make a csv emulate:files"))
    f = r.choices[0].message.files[0]
    assert f["name"] == "summary.csv" and f["type"] == "text/csv"


def test_per_call_credentials_region_endpoint_and_agent_parameters(emu, recorded):
    r = completion(model="bedrock/agent/AGENT456/ALIAS789", messages=user("per call"),
                   aws_access_key_id=TEST_AK, aws_secret_access_key=TEST_SK, aws_region_name="us-east-1",
                   api_base=emu, timeout=30, num_retries=0, invocationId="inv-1", temperature=0.2,
                   api_key=None)
    assert r.choices[0].message.content.endswith("received: per call")
    rec = recorded()[-1]
    assert rec["body"]["invocationId"] == "inv-1"
    assert not any(k.startswith("aws_") or k in ("api_base", "timeout", "num_retries", "temperature")
                   for k in rec["body"])
    assert rec["agentId"] == "AGENT456" and rec["agentAliasId"] == "ALIAS789"


def test_per_call_wrong_secret_is_used_and_refused(emu):
    with pytest.raises(agentbridge.AuthenticationError):
        completion(model=MODEL, messages=user("x"), aws_access_key_id=TEST_AK,
                   aws_secret_access_key="not-the-secret", aws_region_name="us-west-2", api_base=emu)


def test_num_retries_retries_throttling(emu):
    sid = f"py-{uuid.uuid4().hex[:12]}"
    with pytest.raises(agentbridge.RateLimitError):
        completion(model=MODEL, messages=user("x emulate:fail_first=1"), session_id=sid, num_retries=0)
    sid = f"py-{uuid.uuid4().hex[:12]}"
    r = completion(model=MODEL, messages=user("x emulate:fail_first=1"), session_id=sid, num_retries=2)
    assert r.choices[0].finish_reason == "stop"
