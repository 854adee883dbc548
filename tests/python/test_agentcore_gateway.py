"""AgentCore Runtime agents through the gateway, with the official OpenAI SDK and raw HTTP.

Behind the gateway: the emulator's AgentCore data plane (SigV4 `bedrock-agentcore` or bearer,
session rules, errors), forwarding to real agent code no one here wrote: `BedrockAgentCoreApp`
serving a Strands `Agent` with a scripted model (tests/agentcore_agents/app.py), one process
per entrypoint shape. Runtimes no rule forwards are the emulator's scripted agents.
"""

from __future__ import annotations

import json
import os
import pathlib
import re

import openai
import pytest
import requests

from agentcore_fixtures import BEARER_TOKEN, runtime_arn, runtime_id, start_agent, start_emulator
from conftest import MASTER_KEY, TEST_AK, TEST_SK, Proc, free_port

SHAPES = ("raw_events", "text", "result_json", "result_text", "raise_midstream", "tool")
ANSWER = "Hello from the Strands agent. You said: {prompt}"
TOOL_ANSWER = "The weather tool says: sunny and 21 degrees in Berlin"
SCRIPTED = runtime_arn("scripted_agent")
OAUTH = runtime_arn("oauth_agent")
ERRORS = {
    "ValidationException": 400,
    "UnauthorizedException": 401,
    "ServiceQuotaExceededException": 429,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "RetryableConflictException": 409,
    "RuntimeClientError": 424,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}


def model(name: str, arn: str, emulator_url: str, **extra) -> str:
    lines = [
        f"  - model_name: {name}",
        "    litellm_params:",
        f"      model: bedrock/agentcore/{arn}",
        "      aws_access_key_id: os.environ/EMU_AK",
        "      aws_secret_access_key: os.environ/EMU_SK",
        f"      api_base: {emulator_url}",
    ]
    extra.setdefault("num_retries", 0)
    lines += [f"      {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = []
    try:
        agents = {shape: start_agent(shape) for shape in SHAPES + ("request_headers",)}
        started += agents.values()
        arns = {shape: runtime_arn(f"strands_{shape}") for shape in agents}
        emulator = start_emulator(forward=[f"{runtime_id(arns[s])}={agents[s].url}" for s in agents])
        started.append(emulator)
        e = emulator.url
        models = [model(f"ac-{s}", arns[s], e) for s in agents]
        models += [
            model("ac-scripted", SCRIPTED, e, stream_timeout=5),
            model("ac-retry", SCRIPTED, e, num_retries=2),
            model("ac-oauth-key", OAUTH, e, api_key="os.environ/AGENT_BEARER"),
            model("ac-oauth-user", OAUTH, e, user_token_header="x-user-token"),
            model("ac-conversation", SCRIPTED, e, send_conversation="true", tenant="acme"),
        ]
        cfg = tmp_path_factory.mktemp("agentcore") / "config.yaml"
        cfg.write_text("model_list:\n" + "\n".join(models) + "\ngeneral_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n"
                       "litellm_settings:\n  model_group_settings:\n    forward_client_headers_to_llm_api: [ac-request_headers]\n")
        port = free_port()
        env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY,
                   AGENT_BEARER=BEARER_TOKEN, RUST_LOG="info")
        url = f"http://127.0.0.1:{port}"
        gw = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                  f"{url}/health/liveliness", env=env, log_name="pytest-agentcore-gateway")
        started.append(gw)
        yield url, emulator
    finally:
        for p in reversed(started):
            p.stop()


@pytest.fixture()
def gateway(stack):
    return stack[0]


@pytest.fixture()
def emulator(stack):
    stack[1].clear()
    return stack[1]


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway, api_key=MASTER_KEY, max_retries=0, timeout=60)


def expected(shape: str, prompt: str) -> str:
    return TOOL_ANSWER if shape == "tool" else ANSWER.format(prompt=prompt)


# What each shape reports: raw Strands events carry every model call's usage (the tool agent
# makes two calls: 120+180 in, 15+25 out); `return {"result": message}` carries the message's;
# entrypoints that yield or return only text report none (usage absent, never invented).
USAGE = {
    "raw_events": (120, 15),
    "tool": (300, 40),
    "result_json": (120, 15),
    "text": None,
    "result_text": None,
}


@pytest.mark.parametrize("shape", list(USAGE))
def test_each_shape_answers_its_text_exactly_once_not_streamed(client, shape):
    r = client.chat.completions.create(model=f"ac-{shape}", messages=[{"role": "user", "content": "hi there"}])
    assert r.choices[0].message.content.rstrip("\n") == expected(shape, "hi there")
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.tool_calls is None
    want = USAGE[shape]
    if want is None:
        assert r.usage is None
    else:
        assert (r.usage.prompt_tokens, r.usage.completion_tokens) == want
        assert r.usage.total_tokens == sum(want)


@pytest.mark.parametrize("shape", list(USAGE))
def test_each_shape_streams_its_text_exactly_once_with_one_finish_reason(client, shape):
    stream = client.chat.completions.create(
        model=f"ac-{shape}", messages=[{"role": "user", "content": "stream please"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.rstrip("\n") == expected(shape, "stream please")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    usage = [c.usage for c in chunks if c.usage]
    want = USAGE[shape]
    if want is None:
        assert usage == []
    else:
        assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [want]


def test_tool_use_is_the_agents_own_work_shown_as_trace_on_request(client):
    r = client.chat.completions.create(model="ac-tool", messages=[{"role": "user", "content": "weather?"}],
                                       extra_body={"include_trace": True})
    assert r.choices[0].message.content == TOOL_ANSWER
    assert r.choices[0].finish_reason == "stop"
    raw = r.model_dump()
    assert "toolUse" in json.dumps(raw), "the tool call is visible as a trace"
    assert r.choices[0].message.tool_calls is None


def test_streaming_is_incremental_chunks_arrive_before_the_agent_finishes(client, emulator):
    # The scripted agent sends two deltas, then holds the connection open without finishing:
    # the client must already have them.
    stream = client.chat.completions.create(
        model="ac-scripted", stream=True,
        messages=[{"role": "user", "content": "one two three emulate:stall"}])
    got = ""
    for chunk in stream:
        got += chunk.choices[0].delta.content or "" if chunk.choices else ""
        if got == "Emulated AgentCore":
            break
    stream.close()
    assert got == "Emulated AgentCore"


def test_the_raw_sse_of_a_curl_like_client(gateway):
    r = requests.post(f"{gateway}/v1/chat/completions", stream=True, timeout=60,
                      headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": "ac-raw_events", "stream": True,
                            "messages": [{"role": "user", "content": "curl"}]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    datas = [line[6:] for line in r.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == ANSWER.format(prompt="curl")
    assert len(r.headers["x-agentbridge-session-id"]) >= 33


def test_a_curl_like_non_streamed_request(gateway):
    r = requests.post(f"{gateway}/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": "ac-result_json", "messages": [{"role": "user", "content": "plain"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == ANSWER.format(prompt="plain")
    assert body["usage"] == {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}


def test_session_continuity_same_session_id_same_runtime_session(client, emulator):
    first = client.chat.completions.with_raw_response.create(
        model="ac-scripted", messages=[{"role": "user", "content": "remember the tulips"}],
        extra_body={"session_id": "conv-42"})
    again = client.chat.completions.with_raw_response.create(
        model="ac-scripted", messages=[{"role": "user", "content": "what did I say?"}],
        extra_body={"session_id": "conv-42"})
    assert again.parse().choices[0].message.content == 'You said: "remember the tulips"'
    session = first.headers["x-agentbridge-session-id"]
    assert again.headers["x-agentbridge-session-id"] == session
    assert 33 <= len(session) <= 256
    # The session the gateway returned continues the conversation too.
    third = client.chat.completions.create(
        model="ac-scripted", messages=[{"role": "user", "content": "what did I say?"}],
        extra_body={"session_id": session})
    assert third.choices[0].message.content == 'You said: "remember the tulips"; "what did I say?"'
    assert {c["sessionId"] for c in emulator.invocations()} == {session}
    other = client.chat.completions.with_raw_response.create(
        model="ac-scripted", messages=[{"role": "user", "content": "hi"}])
    assert other.headers["x-agentbridge-session-id"] != session


def test_a_real_agent_keeps_the_conversation_of_its_session(client):
    # The Strands agent keeps one conversation per runtime session (as on AgentCore).
    for shape in ("raw_events", "result_json"):
        sid = f"real-{shape}"
        client.chat.completions.create(model=f"ac-{shape}", messages=[{"role": "user", "content": "tulips"}],
                                       extra_body={"session_id": sid})
        r = client.chat.completions.create(model=f"ac-{shape}", messages=[{"role": "user", "content": "what did I say?"}],
                                           extra_body={"session_id": sid})
        assert r.choices[0].message.content == 'Earlier you said: "tulips"', shape
        fresh = client.chat.completions.create(model=f"ac-{shape}", messages=[{"role": "user", "content": "what did I say?"}])
        assert fresh.choices[0].message.content == "You have not said anything earlier in this conversation."


def test_trace_context_and_merged_fields_reach_the_agent(client, emulator):
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client.chat.completions.create(
        model="ac-conversation", extra_headers={"traceparent": tp, "baggage": "team=blue"},
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        extra_body={"actor": {"id": 7}})
    [call] = emulator.invocations()
    assert call["headers"].get("traceparent") == tp
    assert call["headers"].get("baggage") == "team=blue"
    payload = call["payload"] if isinstance(call["payload"], dict) else json.loads(call["payload"])
    assert payload["prompt"] == "hi"
    assert payload["tenant"] == "acme" and payload["actor"] == {"id": 7}
    assert payload["system_prompt"] == "be brief"
    assert [m["role"] for m in payload["messages"]] == ["system", "user"]
    assert call["auth"] == "sigv4"


CUSTOM = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tenant"


def test_forwarded_client_headers_reach_the_agent_code(client, emulator):
    """LiteLLM's `forward_client_headers_to_llm_api` for this model: the client's `x-` headers go
    to the runtime, which passes its allow-listed ones (the custom prefix, on the emulator) to
    BedrockAgentCoreApp's `context.request_headers`; credentials and the runtime's own
    `x-amzn-` headers never go."""
    r = client.chat.completions.create(
        model="ac-request_headers", messages=[{"role": "user", "content": "hi"}],
        extra_headers={CUSTOM: "acme", "x-team": "blue", "x-api-key": "sk-not-for-the-agent",
                       "X-Amzn-Bedrock-AgentCore-Runtime-User-Id": "admin"})
    seen = {k.lower(): v for k, v in json.loads(r.choices[0].message.content).items()}
    assert seen.get(CUSTOM.lower()) == "acme", seen
    assert "x-api-key" not in seen and not any(v == "sk-not-for-the-agent" for v in seen.values())
    [call] = emulator.invocations()
    assert call["headers"].get(CUSTOM.lower()) == "acme"
    assert call["userId"] is None, call


def test_client_headers_are_not_forwarded_unless_the_model_says_so(client, emulator):
    client.chat.completions.create(model="ac-scripted", messages=[{"role": "user", "content": "hi"}],
                                   extra_headers={CUSTOM: "acme"})
    [call] = emulator.invocations()
    assert CUSTOM.lower() not in call["headers"], call["headers"]


@pytest.mark.parametrize("name,status", list(ERRORS.items()))
def test_each_agentcore_error_keeps_its_status(gateway, name, status):
    r = requests.post(f"{gateway}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": "ac-scripted", "messages": [{"role": "user", "content": f"emulate:error={name}"}]})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == name


def test_a_busy_session_is_retried_with_backoff(client, emulator):
    r = client.chat.completions.create(
        model="ac-retry", messages=[{"role": "user", "content": "emulate:retryable_conflict_once go"}])
    assert "received: emulate:retryable_conflict_once go" in r.choices[0].message.content
    statuses = [c["status"] for c in emulator.invocations()]
    assert statuses == [409, 200]
    assert len({c["sessionId"] for c in emulator.invocations()}) == 1


def test_a_midstream_raise_is_an_in_band_error_after_the_text(client):
    stream = client.chat.completions.create(
        model="ac-raise_midstream", stream=True, messages=[{"role": "user", "content": "one two three"}])
    got = ""
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            got += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert got == "Hello from"
    assert "scripted failure after two chunks" in str(err.value)


def test_a_midstream_raise_not_streamed_is_a_424(client):
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="ac-raise_midstream", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 424


def test_bearer_auth_with_the_deployments_api_key(client, emulator):
    r = client.chat.completions.create(model="ac-oauth-key", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content.endswith("received: hi")
    assert [c["auth"] for c in emulator.invocations()] == ["bearer"]


def test_bearer_auth_with_each_users_own_token(client, emulator):
    r = client.chat.completions.create(model="ac-oauth-user", messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"x-user-token": f"Bearer {BEARER_TOKEN}"})
    assert r.choices[0].message.content.endswith("received: hi")
    assert [c["auth"] for c in emulator.invocations()] == ["bearer"]
    for headers in ({}, {"x-user-token": "someone-elses-token"}):
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="ac-oauth-user", messages=[{"role": "user", "content": "hi"}],
                                           extra_headers=headers)


def test_the_user_token_is_never_taken_from_the_body(gateway):
    r = requests.post(f"{gateway}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": "ac-oauth-user", "api_key": BEARER_TOKEN,
                            "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400, r.text


def test_the_example_config_answers_on_the_built_in_emulator(tmp_path):
    """README's first command with examples/agentcore.yaml: `--emulator` serves the
    `bedrock/agentcore/...` models too (scripted agents), streamed and not."""
    from conftest import ROOT

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=TEST_AK, AWS_SECRET_ACCESS_KEY=TEST_SK)
    gw = Proc(["--config", str(ROOT / "examples" / "agentcore.yaml"), "--emulator", "--port", str(port),
               "--host", "127.0.0.1"], f"{url}/health/liveliness", env=env, log_name="pytest-agentcore-example")
    try:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        r = c.chat.completions.create(model="my-agentcore-agent", messages=[{"role": "user", "content": "hello"}])
        assert r.choices[0].message.content == "Emulated AgentCore runtime my_agent-AbCdE12345 received: hello"
        chunks = list(c.chat.completions.create(model="my-agentcore-agent", stream=True,
                                                messages=[{"role": "user", "content": "hello emulate:sse"}]))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == "Emulated AgentCore runtime my_agent-AbCdE12345 received: hello emulate:sse"
    finally:
        gw.stop()


def test_the_built_in_emulator_accepts_an_oauth_models_api_key(tmp_path):
    """`--emulator` with a model that reaches its runtime with a bearer token (`api_key`): the
    runtime is configured for OAuth there and takes that token, not a signature."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    arn = runtime_arn("my_oauth_agent")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"""model_list:
  - model_name: oauth-agent
    litellm_params:
      model: bedrock/agentcore/{arn}
      api_key: os.environ/AGENT_BEARER
""")
    env = dict(os.environ, AGENT_BEARER=BEARER_TOKEN)
    gw = Proc(["--config", str(cfg), "--emulator", "--port", str(port), "--host", "127.0.0.1"],
              f"{url}/health/liveliness", env=env, log_name="pytest-agentcore-emulator-oauth")
    try:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        r = c.chat.completions.create(model="oauth-agent", messages=[{"role": "user", "content": "hello"}])
        assert r.choices[0].message.content == f"Emulated AgentCore runtime {runtime_id(arn)} received: hello"
        emulator = re.search(r"served by the built-in emulator at (http://[0-9.:]+)",
                             pathlib.Path(gw.log.name).read_text()).group(1)
        calls = requests.get(f"{emulator}/_emulator/agentcore/invocations", timeout=10).json()
        assert [call["auth"] for call in calls] == ["bearer"], calls
    finally:
        gw.stop()


def test_the_readme_first_command_serves_bedrock_and_agentcore_agents(tmp_path):
    """README's first command as written (`--config examples/config.yaml --emulator`): the
    LiteLLM page's models and the AgentCore model answer the OpenAI SDK, streamed and not."""
    from conftest import ROOT

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    gw = Proc(["--config", str(ROOT / "examples" / "config.yaml"), "--emulator", "--port", str(port)],
              f"{url}/health/liveliness", env=env, log_name="pytest-readme-first-command")
    try:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        assert {m.id for m in c.models.list()} == {"bedrock-agent-1", "bedrock-agent-2", "agentcore-1"}
        r = c.chat.completions.create(model="agentcore-1", messages=[{"role": "user", "content": "hello"}])
        assert r.choices[0].message.content == "Emulated AgentCore runtime my_agent-AbCdE12345 received: hello"
        chunks = list(c.chat.completions.create(model="agentcore-1", stream=True,
                                                messages=[{"role": "user", "content": "hello emulate:sse"}]))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == "Emulated AgentCore runtime my_agent-AbCdE12345 received: hello emulate:sse"
        assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
        r = c.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content
    finally:
        gw.stop()
