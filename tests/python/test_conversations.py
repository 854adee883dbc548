"""Conversations through the proxy with the OpenAI SDK, streamed and not: history, sessions,
tool calls (return of control), citations, files, in-band errors, traces, guardrails."""
import json

import openai
import pytest
import requests
from openai import OpenAI

from conftest import MASTER_KEY

STREAM = [False, True]


@pytest.fixture()
def client(gateway_url):
    return OpenAI(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0)


class Answer:
    """One answer, however it arrived."""

    def __init__(self, content, finish_reason, tool_calls, annotations, extra, chunks=None):
        self.content, self.finish_reason, self.tool_calls = content, finish_reason, tool_calls
        self.annotations, self.extra, self.chunks = annotations, extra, chunks or []


def ask(client, stream, messages, **kw):
    if not stream:
        r = client.chat.completions.create(model="bedrock-agent-1", messages=messages, **kw)
        m = r.choices[0].message
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in (m.tool_calls or [])]
        anns = [a.model_dump() for a in (m.annotations or [])]
        return Answer(m.content, r.choices[0].finish_reason, calls, anns, {**(r.model_extra or {}), **(m.model_extra or {})})
    chunks = list(client.chat.completions.create(model="bedrock-agent-1", messages=messages, stream=True, **kw))
    content, calls, anns, extra, finish = "", [], [], {}, None
    for c in chunks:
        extra.update({k: v for k, v in (c.model_extra or {}).items() if k != "trace"})
        if (c.model_extra or {}).get("trace"):
            extra.setdefault("trace", []).append(c.model_extra["trace"])
        for ch in c.choices:
            d = ch.delta
            content += d.content or ""
            for tc in d.tool_calls or []:
                calls.append({"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments})
            dx = d.model_extra or {}
            anns += dx.get("annotations") or []
            for k in ("files", "citations"):
                if dx.get(k):
                    extra.setdefault(k, []).extend(dx[k])
            finish = ch.finish_reason or finish
    return Answer(content, finish, calls, anns, extra, chunks)


@pytest.mark.parametrize("stream", STREAM)
def test_multi_turn_answer_shows_the_earlier_turns(client, stream, recorded):
    a = ask(client, stream, [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "I like tea."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What did I say?"},
    ])
    assert a.content == 'You said: "My name is Ada."; "I like tea."'
    state = recorded()[-1]["body"]["sessionState"]
    assert len(state["conversationHistory"]["messages"]) == 4
    assert state["promptSessionAttributes"]["system"] == "You are terse."


@pytest.mark.parametrize("stream", STREAM)
def test_pinned_session_is_used_and_returned(client, stream, recorded):
    sid = f"my-session-{int(stream)}"
    a = ask(client, stream, [{"role": "user", "content": "remember: blue"}], extra_body={"session_id": sid})
    assert a.extra["session_id"] == sid
    assert recorded()[-1]["sessionId"] == sid
    # The session's memory carries the turn to the next call (LiteLLM's spelling this time).
    b = ask(client, stream, [{"role": "user", "content": "What did I say?"}], extra_body={"sessionID": sid})
    assert "remember: blue" in b.content


def test_session_header_and_fresh_sessions(gateway_url):
    h = {"Authorization": f"Bearer {MASTER_KEY}"}
    body = {"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "x"}]}
    r1 = requests.post(f"{gateway_url}/v1/chat/completions", json=body, headers=h)
    r2 = requests.post(f"{gateway_url}/v1/chat/completions", json=body, headers=h)
    assert r1.headers["x-agentbridge-session-id"] == r1.json()["session_id"]
    assert r1.json()["session_id"] != r2.json()["session_id"]


@pytest.mark.parametrize("stream", STREAM)
def test_tool_call_round_trip_returns_the_tools_output_through_the_agent(client, stream, recorded):
    question = {"role": "user", "content": "Weather in Paris? emulate:return_control"}
    a = ask(client, stream, [question])
    assert a.finish_reason == "tool_calls"
    assert len(a.tool_calls) == 1
    call = a.tool_calls[0]
    assert call["name"] == "WeatherAPI__get_forecast"
    assert json.loads(call["arguments"]) == {"city": "Paris", "days": 3}
    first_session = recorded()[-1]["sessionId"]
    follow = ask(client, stream, [
        question,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 24C"},
    ])
    assert follow.content == "The tool returned: sunny, 24C"
    assert follow.finish_reason == "stop"
    rec = recorded()[-1]
    assert rec["sessionId"] == first_session
    assert rec["body"]["sessionState"]["returnControlInvocationResults"][0]["functionResult"]["function"] == "get_forecast"


def test_api_return_of_control_round_trip(client):
    q = {"role": "user", "content": "Where is my order? emulate:return_control_api"}
    a = ask(client, False, [q])
    call = a.tool_calls[0]
    assert call["name"] == "OrdersAPI__GET__orders__orderId_"
    assert json.loads(call["arguments"]) == {"orderId": "A-42"}
    follow = ask(client, False, [q, {"role": "assistant", "tool_calls": [{"id": call["id"], "type": "function",
        "function": {"name": call["name"], "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"status": "shipped"}'}])
    assert follow.content == 'The tool returned: {"status": "shipped"}'


def test_foreign_tool_call_id_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="bedrock-agent-1", messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "call_123", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_123", "content": "y"}])
    assert e.value.body["param"] == "messages[2].tool_call_id"


@pytest.mark.parametrize("stream", STREAM)
def test_citations_carry_the_reference_uri(client, stream):
    a = ask(client, stream, [{"role": "user", "content": "How did Q3 go? emulate:citations"}])
    urls = [x["url_citation"]["url"] for x in a.annotations]
    assert "s3://emulator-kb/reports/q3-2026.pdf" in urls and "https://example.com/churn" in urls
    first = a.annotations[0]["url_citation"]
    assert a.content[first["start_index"]:first["end_index"]] == "Q3 revenue grew 12% year over year."
    assert a.annotations[0]["type"] == "url_citation"
    assert a.extra["citations"][0]["retrievedReferences"][0]["location"]["type"] == "S3"


@pytest.mark.parametrize("stream", STREAM)
def test_output_files_are_exposed(client, stream):
    import base64
    a = ask(client, stream, [{"role": "user", "content": "make a csv emulate:files"}])
    f = a.extra["files"][0]
    assert f["name"] == "summary.csv" and f["type"] == "text/csv"
    assert base64.b64decode(f["bytes"]).startswith(b"quarter,revenue")


def test_midstream_exception_arrives_in_band(client):
    stream = client.chat.completions.create(model="bedrock-agent-1", stream=True,
        messages=[{"role": "user", "content": "long answer please emulate:exception=internalServerException"}])
    got = []
    with pytest.raises(openai.APIError) as e:
        for c in stream:
            got.append(c)
    assert got and got[0].choices[0].delta.content, "chunks were sent before the failure"
    assert not any(c.choices and c.choices[0].finish_reason == "stop" for c in got)
    assert "InternalServerException" in str(e.value)


def test_midstream_exception_raw_sse_has_error_event_and_no_done(gateway_url):
    r = requests.post(f"{gateway_url}/v1/chat/completions", stream=True, headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": "bedrock-agent-1", "stream": True, "messages": [{"role": "user", "content": "x emulate:exception=throttlingException"}]})
    assert r.status_code == 200
    events = [l[6:] for l in r.iter_lines(decode_unicode=True) if l.startswith("data: ")]
    last = json.loads(events[-1])
    assert last["error"]["type"] == "rate_limit_error" and last["error"]["code"] == "ThrottlingException"
    assert "[DONE]" not in events


def test_non_streamed_exception_is_an_error_response(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="bedrock-agent-1",
            messages=[{"role": "user", "content": "x emulate:exception=throttlingException"}])
    assert e.value.body["code"] == "ThrottlingException"


@pytest.mark.parametrize("stream", STREAM)
def test_trace_comes_back_when_asked_for_and_not_otherwise(client, stream):
    plain = ask(client, stream, [{"role": "user", "content": "hi"}])
    assert "trace" not in plain.extra or not plain.extra["trace"]
    traced = ask(client, stream, [{"role": "user", "content": "hi"}], extra_body={"include_trace": True})
    steps = [next(iter(t["trace"])) for t in traced.extra["trace"]]
    assert {"preProcessingTrace", "orchestrationTrace", "postProcessingTrace"} <= set(steps)
    usage = [t["trace"][s]["modelInvocationOutput"]["metadata"]["usage"] for t, s in zip(traced.extra["trace"], steps)
             if "modelInvocationOutput" in t["trace"][s]]
    assert len(usage) == 3


@pytest.mark.parametrize("stream", STREAM)
def test_guardrail_intervention_is_content_filter(client, stream):
    a = ask(client, stream, [{"role": "user", "content": "forbidden topic emulate:guardrail"}])
    assert a.finish_reason == "content_filter"


@pytest.mark.parametrize("stream", STREAM)
def test_multibyte_text_split_across_chunks_arrives_intact(client, stream):
    a = ask(client, stream, [{"role": "user", "content": "emulate:unicode"}])
    assert a.content == "Grüße aus Köln — 日本語のテキスト — 🎉✨ done"


def test_usage_sums_every_trace_step(client):
    r = client.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "one two three"}])
    # Emulator usage: pre (200+words, 25), orchestration (600+2*words, len(answer)/4+10), post (150, 30).
    answer = r.choices[0].message.content
    assert r.usage.prompt_tokens == (200 + 3) + (600 + 6) + 150
    assert r.usage.completion_tokens == 25 + (len(answer.encode()) // 4 + 10) + 30
