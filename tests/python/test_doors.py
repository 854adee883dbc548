"""The Responses and Messages doors with clients no one here wrote: the official OpenAI SDK
(`client.responses`), the OpenAI Agents SDK (an `Agent` on `OpenAIResponsesModel`) and the
official Anthropic SDK (`client.messages`), against the gateway on the emulator."""
import asyncio
import json

import anthropic
import openai
import pytest
import requests
from openai import AsyncOpenAI, OpenAI

from conftest import MASTER_KEY

MODEL = "bedrock-agent-1"


@pytest.fixture()
def oai(gateway_url):
    return OpenAI(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0)


@pytest.fixture()
def claude(gateway_url):
    # The Anthropic SDK sends the key as x-api-key.
    return anthropic.Anthropic(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0)


# --- OpenAI Responses API: the official SDK ------------------------------------------------


def test_responses_create_answers_with_a_message_usage_and_cost(oai, recorded):
    raw = oai.responses.with_raw_response.create(model=MODEL, input="Hello there", instructions="Be terse.",
                                                 tools=[], include=[], temperature=0.2, store=True)
    r = raw.parse()
    assert r.status == "completed"
    assert r.output_text == "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: Hello there"
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage.input_tokens > 0 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert float(raw.headers["x-litellm-response-cost"]) >= 0
    assert r.model_extra["session_id"] == raw.headers["x-agentbridge-session-id"]
    body = recorded()[-1]["body"]
    assert body["inputText"] == "Hello there"
    assert body["sessionState"]["promptSessionAttributes"]["system"] == "Be terse."
    assert "temperature" not in body and "tools" not in body and "instructions" not in body


def test_responses_stream_sends_the_documented_events_in_order(oai):
    with oai.responses.stream(model=MODEL, input="stream this please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    for needed in ["response.output_item.added", "response.content_part.added", "response.output_text.delta",
                   "response.output_text.done", "response.content_part.done", "response.output_item.done"]:
        assert needed in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: stream this please"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id_continues_the_agent_session(oai, recorded, stream):
    first = oai.responses.create(model=MODEL, input=f"remember: green {stream}")
    session = recorded()[-1]["sessionId"]
    if stream:
        with oai.responses.stream(model=MODEL, input="What did I say?", previous_response_id=first.id) as s:
            follow = s.get_final_response()
    else:
        follow = oai.responses.create(model=MODEL, input="What did I say?", previous_response_id=first.id)
    assert f"remember: green {stream}" in follow.output_text
    assert recorded()[-1]["sessionId"] == session
    assert follow.previous_response_id == first.id
    assert follow.id != first.id


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_round_trip(oai, recorded, stream):
    question = "Weather in Paris? emulate:return_control"
    if stream:
        with oai.responses.stream(model=MODEL, input=question) as s:
            events = list(s)
            r = s.get_final_response()
        assert "response.function_call_arguments.done" in [e.type for e in events]
    else:
        r = oai.responses.create(model=MODEL, input=question)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "WeatherAPI__get_forecast"
    assert json.loads(calls[0].arguments) == {"city": "Paris", "days": 3}
    session = recorded()[-1]["sessionId"]
    follow = oai.responses.create(model=MODEL, previous_response_id=r.id, input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 24C"}])
    assert follow.output_text == "The tool returned: sunny, 24C"
    rec = recorded()[-1]
    assert rec["sessionId"] == session
    assert rec["body"]["sessionState"]["returnControlInvocationResults"][0]["functionResult"]["function"] == "get_forecast"


def test_citations_are_annotations(oai):
    r = oai.responses.create(model=MODEL, input="How did Q3 go? emulate:citations")
    text = r.output[0].content[0]
    urls = [a.url for a in text.annotations]
    assert "s3://emulator-kb/reports/q3-2026.pdf" in urls
    first = text.annotations[0]
    assert text.text[first.start_index:first.end_index] == "Q3 revenue grew 12% year over year."


@pytest.mark.parametrize("stream", [False, True])
def test_guardrail_is_an_incomplete_response(oai, gateway_url, stream):
    if not stream:
        r = oai.responses.create(model=MODEL, input="forbidden topic emulate:guardrail")
        assert r.status == "incomplete" and r.incomplete_details.reason == "content_filter"
        return
    with oai.responses.stream(model=MODEL, input="forbidden topic emulate:guardrail") as s:
        last = list(s)[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "content_filter"


def test_midstream_failure_is_response_failed_then_error(oai):
    stream = oai.responses.create(model=MODEL, input="long answer emulate:exception=internalServerException",
                                  stream=True)
    events = list(stream)
    assert events[-2].type == "response.failed"
    assert events[-2].response.status == "failed" and events[-2].response.error.code == "server_error"
    assert events[-1].type == "error" and "InternalServerException" in events[-1].message
    assert any(e.type == "response.output_text.delta" for e in events)


def test_trace_on_request(oai):
    plain = oai.responses.create(model=MODEL, input="hi")
    assert "trace" not in (plain.model_extra or {})
    traced = oai.responses.create(model=MODEL, input="hi", extra_body={"include_trace": True})
    steps = {next(iter(t["trace"])) for t in traced.model_extra["trace"]}
    assert {"preProcessingTrace", "orchestrationTrace", "postProcessingTrace"} <= steps


def test_errors_are_openai_errors(oai, gateway_url):
    with pytest.raises(openai.BadRequestError) as e:
        oai.responses.create(model=MODEL, input="x", previous_response_id="resp_not-ours")
    assert e.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="no-such-model", input="x")
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=gateway_url, api_key="sk-wrong", max_retries=0).responses.create(model=MODEL, input="x")
    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model=MODEL, input="x emulate:error=ThrottlingException")


def test_retrieving_a_response_is_a_404_saying_responses_are_not_stored(oai):
    r = oai.responses.create(model=MODEL, input="hello")
    with pytest.raises(openai.NotFoundError) as e:
        oai.responses.retrieve(r.id)
    assert "not stored" in str(e.value)


# --- OpenAI Agents SDK ---------------------------------------------------------------------


def agent(gateway_url):
    from agents import Agent, OpenAIResponsesModel, set_tracing_disabled
    set_tracing_disabled(True)  # its trace export would try the network
    client = AsyncOpenAI(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0)
    return Agent(name="assistant", instructions="You are helpful.",
                 model=OpenAIResponsesModel(model=MODEL, openai_client=client))


def test_agents_sdk_runner_run(gateway_url, recorded):
    from agents import Runner
    result = asyncio.run(Runner.run(agent(gateway_url), "Hello from the Agents SDK"))
    assert result.final_output == "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: Hello from the Agents SDK"
    assert result.context_wrapper.usage.output_tokens > 0
    assert recorded()[-1]["body"]["sessionState"]["promptSessionAttributes"]["system"] == "You are helpful."


def test_agents_sdk_runner_run_streamed(gateway_url):
    from agents import Runner

    async def run():
        result = Runner.run_streamed(agent(gateway_url), "Hello streamed")
        deltas = []
        async for event in result.stream_events():
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
                deltas.append(event.data.delta)
        return result, "".join(deltas)

    result, text = asyncio.run(run())
    assert text == result.final_output == "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: Hello streamed"


def test_agents_sdk_continues_by_previous_response_id(gateway_url, recorded):
    from agents import Runner

    async def run():
        a = agent(gateway_url)
        first = await Runner.run(a, "remember: violet")
        return await Runner.run(a, "What did I say?", previous_response_id=first.last_response_id)

    follow = asyncio.run(run())
    assert "remember: violet" in follow.final_output


# --- Anthropic Messages API: the official SDK ----------------------------------------------


def test_messages_create_answers_with_text_usage_and_cost(claude, recorded):
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=1024, system="Be terse.",
                                                   metadata={"user_id": "u-1"},
                                                   messages=[{"role": "user", "content": "Hello Claude-shaped"}])
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant" and m.stop_reason == "end_turn"
    assert m.content[0].type == "text"
    assert m.content[0].text == "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: Hello Claude-shaped"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    assert float(raw.headers["x-litellm-response-cost"]) >= 0
    body = recorded()[-1]["body"]
    assert body["sessionState"]["promptSessionAttributes"]["system"] == "Be terse."
    assert "max_tokens" not in body and "metadata" not in body


def test_messages_stream(claude):
    with claude.messages.stream(model=MODEL, max_tokens=1024,
                                messages=[{"role": "user", "content": "stream me"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: stream me"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_messages_raw_stream_names_every_event(gateway_url):
    r = requests.post(f"{gateway_url}/v1/messages", stream=True, headers={"x-api-key": MASTER_KEY},
                      json={"model": MODEL, "max_tokens": 10, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    events = r.text.strip().split("\n\n")
    names = [e.split("\n")[0] for e in events]
    assert all(n.startswith("event: ") for n in names)
    assert names[0] == "event: message_start" and names[-1] == "event: message_stop"
    for e in events:
        name, data = e.split("\n", 1)
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_round_trip(claude, recorded, stream):
    question = {"role": "user", "content": "Weather in Paris? emulate:return_control"}
    if stream:
        with claude.messages.stream(model=MODEL, max_tokens=256, messages=[question]) as s:
            m = s.get_final_message()
    else:
        m = claude.messages.create(model=MODEL, max_tokens=256, messages=[question])
    assert m.stop_reason == "tool_use"
    use = [b for b in m.content if b.type == "tool_use"][0]
    assert use.name == "WeatherAPI__get_forecast" and use.input == {"city": "Paris", "days": 3}
    session = recorded()[-1]["sessionId"]
    follow = claude.messages.create(model=MODEL, max_tokens=256, messages=[
        question,
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24C"}]},
    ])
    assert follow.content[0].text == "The tool returned: sunny, 24C"
    assert recorded()[-1]["sessionId"] == session


def test_guardrail_is_a_refusal(claude):
    m = claude.messages.create(model=MODEL, max_tokens=64,
                               messages=[{"role": "user", "content": "forbidden topic emulate:guardrail"}])
    assert m.stop_reason == "refusal"


def test_citations_are_on_the_text_block(claude):
    m = claude.messages.create(model=MODEL, max_tokens=64,
                               messages=[{"role": "user", "content": "How did Q3 go? emulate:citations"}])
    cites = m.content[0].citations
    assert cites[0].url == "s3://emulator-kb/reports/q3-2026.pdf"
    assert cites[0].cited_text == "Q3 revenue grew 12% year over year."


def test_session_id_continues_a_conversation(claude):
    first = claude.messages.create(model=MODEL, max_tokens=64, extra_body={"session_id": "anthropic-sess-1"},
                                   messages=[{"role": "user", "content": "remember: amber"}])
    assert first.model_extra["session_id"] == "anthropic-sess-1"
    follow = claude.messages.create(model=MODEL, max_tokens=64, extra_body={"session_id": "anthropic-sess-1"},
                                    messages=[{"role": "user", "content": "What did I say?"}])
    assert "remember: amber" in follow.content[0].text


def test_errors_are_anthropic_errors(claude, gateway_url):
    with pytest.raises(anthropic.BadRequestError) as e:
        # (An explicit timeout: the SDK would compute one from max_tokens.)
        claude.messages.create(model=MODEL, max_tokens=None, timeout=30,  # type: ignore[arg-type]
                               messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=gateway_url, api_key="sk-wrong", max_retries=0).messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.RateLimitError) as e:
        claude.messages.create(model=MODEL, max_tokens=8,
                               messages=[{"role": "user", "content": "x emulate:error=ThrottlingException"}])
    assert e.value.body["error"]["type"] == "rate_limit_error"


def test_bearer_auth_works_too(gateway_url):
    r = requests.post(f"{gateway_url}/v1/messages", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["type"] == "message"


def test_midstream_error_is_an_error_event(claude):
    got = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude.messages.stream(model=MODEL, max_tokens=64, messages=[
                {"role": "user", "content": "long answer emulate:exception=throttlingException"}]) as s:
            for t in s.text_stream:
                got.append(t)
    assert got, "text was sent before the failure"
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "rate_limit_error"


# --- Virtual keys through the new doors (the shared path) ----------------------------------


def test_virtual_keys_are_admitted_and_charged_through_both_doors(gateway_url, oai):
    admin = {"Authorization": f"Bearer {MASTER_KEY}"}
    k = requests.post(f"{gateway_url}/key/generate", json={"models": [MODEL]}, headers=admin).json()["key"]
    r1 = OpenAI(base_url=gateway_url, api_key=k, max_retries=0).responses.with_raw_response.create(model=MODEL, input="x")
    c1 = float(r1.headers["x-litellm-response-cost"])
    assert float(r1.headers["x-litellm-key-spend"]) == pytest.approx(c1)
    key_claude = anthropic.Anthropic(base_url=gateway_url, api_key=k, max_retries=0)
    r2 = key_claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "y"}])
    assert float(r2.headers["x-litellm-key-spend"]) == pytest.approx(c1 + float(r2.headers["x-litellm-response-cost"]))
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        key_claude.messages.create(model="bedrock-agent-2", max_tokens=8, messages=[{"role": "user", "content": "z"}])
    assert e.value.body["error"]["type"] == "permission_error"
    with pytest.raises(openai.PermissionDeniedError):
        OpenAI(base_url=gateway_url, api_key=k, max_retries=0).responses.create(model="bedrock-agent-2", input="z")
