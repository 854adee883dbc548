"""OpenTelemetry traces over OTLP, received by an OTLP receiver decoding with the official
`opentelemetry-proto` definitions (otlp_receiver.py), over OTLP/HTTP and OTLP/gRPC.

Gateways share one emulator: one exporting over OTLP/HTTP protobuf (turned on by
`OTEL_EXPORTER_OTLP_ENDPOINT`), one over OTLP/HTTP JSON, one over OTLP/gRPC (turned on by
LiteLLM's `callbacks: ["otel"]`, protocol from `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), and two
for the sampler (`always_off`) and the flush at shutdown. Clients send a W3C `traceparent` so each call's trace is found by its id.
"""
from __future__ import annotations

import json
import os
import pathlib
import secrets
import sys
import time

import openai
import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from agentcore_fixtures import runtime_arn, start_emulator  # noqa: E402
from conftest import TEST_AK, TEST_SK, Proc, free_port  # noqa: E402
from otlp_receiver import Receiver  # noqa: E402

AGENTCORE_ARN = runtime_arn("scripted_agent")
# Every prompt carries this; no span may.
CANARY = "canary-prompt-7f3a9c"


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def emulator():
    e = start_emulator()
    yield e
    e.stop()


def config(path: pathlib.Path, emulator_url: str, extra: str = "") -> None:
    path.write_text(f"""model_list:
  - model_name: bedrock-agent-1
    litellm_params:
      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW
      aws_access_key_id: os.environ/EMU_AK
      aws_secret_access_key: os.environ/EMU_SK
      aws_region_name: us-west-2
      api_base: {emulator_url}
      num_retries: 0
  - model_name: agentcore-1
    litellm_params:
      model: bedrock/agentcore/{AGENTCORE_ARN}
      aws_access_key_id: os.environ/EMU_AK
      aws_secret_access_key: os.environ/EMU_SK
      api_base: {emulator_url}
      num_retries: 0
{extra}""")


def start_gateway(tmp_path_factory, emulator, name: str, otel_env: dict, extra: str = ""):
    cfg = tmp_path_factory.mktemp(f"otel-{name}") / "config.yaml"
    config(cfg, emulator.url, extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(EMU_AK=TEST_AK, EMU_SK=TEST_SK, RUST_LOG="info", OTEL_SERVICE_NAME=f"agentbridge-{name}",
               OTEL_BSP_SCHEDULE_DELAY="100")
    env.update(otel_env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"], f"{url}/health/liveliness",
                env=env, log_name=f"pytest-gw-otel-{name}")
    return url, proc


@pytest.fixture(scope="module", params=["http", "grpc", "json"])
def gateway(request, receiver, emulator, tmp_path_factory):
    if request.param == "http":
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.http_port}"}
        url, proc = start_gateway(tmp_path_factory, emulator, "http", env)
    elif request.param == "json":
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.http_port}",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
        url, proc = start_gateway(tmp_path_factory, emulator, "json", env)
    else:
        env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{receiver.grpc_port}"}
        url, proc = start_gateway(tmp_path_factory, emulator, "grpc", env, 'litellm_settings:\n  callbacks: ["otel"]\n')
    yield url, request.param
    proc.stop()


def traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent}-01", trace_id, parent


def trace(receiver: Receiver, trace_id: str) -> list[dict]:
    """The spans of one trace, once its server span (the last one ended) has arrived."""
    deadline = time.time() + 30
    while time.time() < deadline:
        spans = [s for s in receiver.spans() if s["trace_id"] == trace_id]
        if any(s["kind"] == "SERVER" for s in spans):
            return spans
        time.sleep(0.1)
    raise AssertionError(f"no server span for trace {trace_id}; got {len(receiver.spans())} spans in all")


def children(spans: list[dict], parent: dict) -> list[dict]:
    return sorted((s for s in spans if s["parent_span_id"] == parent["span_id"]), key=lambda s: s["start"])


def one(spans: list[dict], **want) -> dict:
    found = [s for s in spans if all(s.get(k) == v for k, v in want.items())]
    assert len(found) == 1, (want, [(s["name"], s["kind"]) for s in spans])
    return found[0]


def check_request_tree(spans, protocol, parent_id, route, model, session, usage, finish):
    """The server span continues the client's span; invoke_agent is its child with the
    GenAI attributes; the agent's steps hang under invoke_agent; no prompt anywhere."""
    assert {s["protocol"] for s in spans} == {{"http": "http/protobuf", "json": "http/json", "grpc": "grpc"}[protocol]}
    assert {s["service"] for s in spans} == {f"agentbridge-{protocol}"}
    server = one(spans, kind="SERVER")
    assert server["parent_span_id"] == parent_id
    assert server["name"] == f"POST {route}"
    assert server["attributes"]["http.request.method"] == "POST"
    assert server["attributes"]["http.route"] == route
    assert server["attributes"]["http.response.status_code"] == 200
    (agent,) = children(spans, server)
    assert agent["name"] == f"invoke_agent {model}"
    assert agent["kind"] == "CLIENT"
    a = agent["attributes"]
    assert a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.agent.name"] == model
    assert a["gen_ai.agent.id"] == "L1RT58GYRW/MFPSBCXYTW"
    assert a["gen_ai.conversation.id"] == session
    assert a["gen_ai.response.finish_reasons"] == [finish]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == usage
    assert "error.type" not in a
    assert server["start"] <= agent["start"] <= agent["end"] <= server["end"]
    steps = children(spans, agent)
    assert [s["name"] for s in steps] == ["pre_processing", "orchestration", "post_processing"]
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 3 and all(c["kind"] == "CLIENT" for c in chats)
    assert all(c["parent_span_id"] in {s["span_id"] for s in steps} for c in chats)
    # The usage of invoke_agent is the sum of its model calls'.
    assert sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats) == usage[0]
    assert sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in chats) == usage[1]
    assert CANARY not in json.dumps(spans)


def test_non_streamed_chat_call_is_one_trace_with_the_agent_steps(gateway, receiver):
    url, protocol = gateway
    tp, trace_id, parent = traceparent()
    r = requests.post(f"{url}/v1/chat/completions", headers={"traceparent": tp}, timeout=30,
                      json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": f"hello {CANARY}"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    # The client did not ask for the trace: it is not in the answer.
    assert "preProcessingTrace" not in r.text
    usage = (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"])
    spans = trace(receiver, trace_id)
    check_request_tree(spans, protocol, parent, "/chat/completions", "bedrock-agent-1",
                       r.headers["x-agentbridge-session-id"], usage, "stop")


def test_streamed_chat_call_with_the_openai_sdk(gateway, receiver):
    url, protocol = gateway
    tp, trace_id, parent = traceparent()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", default_headers={"traceparent": tp})
    with client.chat.completions.with_streaming_response.create(
            model="bedrock-agent-1", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": f"tell me a story {CANARY}"}]) as resp:
        session = resp.headers["x-agentbridge-session-id"]
        chunks = list(resp.parse())
    usage = next(c.usage for c in chunks if c.usage)
    spans = trace(receiver, trace_id)
    check_request_tree(spans, protocol, parent, "/chat/completions", "bedrock-agent-1", session,
                       (usage.prompt_tokens, usage.completion_tokens), "stop")


def test_responses_call_keeps_the_trace_the_client_asked_for(gateway, receiver):
    url, protocol = gateway
    tp, trace_id, parent = traceparent()
    r = requests.post(f"{url}/v1/responses", headers={"traceparent": tp}, timeout=30,
                      json={"model": "bedrock-agent-1", "input": f"summarize {CANARY}", "include_trace": True})
    assert r.status_code == 200, r.text
    body = r.json()
    # Asked for, the agent's trace still reaches the client as well as the spans.
    assert "preProcessingTrace" in r.text
    usage = (body["usage"]["input_tokens"], body["usage"]["output_tokens"])
    spans = trace(receiver, trace_id)
    check_request_tree(spans, protocol, parent, "/responses", "bedrock-agent-1",
                       r.headers["x-agentbridge-session-id"], usage, "stop")


def test_multi_step_agent_trace_becomes_a_span_tree_with_its_own_times(gateway, receiver):
    url, protocol = gateway
    tp, trace_id, _ = traceparent()
    r = requests.post(f"{url}/v1/messages", headers={"traceparent": tp, "x-api-key": "unused"}, timeout=30,
                      json={"model": "bedrock-agent-1", "max_tokens": 100,
                            "messages": [{"role": "user", "content": f"pay my bill {CANARY} emulate:multistep"}]})
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]
    spans = trace(receiver, trace_id)
    assert one(spans, kind="SERVER")["name"] == "POST /v1/messages"
    agent = one(spans, name="invoke_agent bedrock-agent-1")
    assert (agent["attributes"]["gen_ai.usage.input_tokens"], agent["attributes"]["gen_ai.usage.output_tokens"]) == \
        (usage["input_tokens"], usage["output_tokens"])
    steps = children(spans, agent)
    assert [s["name"] for s in steps] == ["pre_processing", "orchestration", "orchestration", "orchestration",
                                          "guardrail", "orchestration", "post_processing"]
    tool = one(spans, name="execute_tool get_forecast")
    assert tool["parent_span_id"] == steps[1]["span_id"]
    assert tool["attributes"]["gen_ai.tool.type"] == "extension"
    assert tool["attributes"]["aws.bedrock.agent.action_group"] == "WeatherAPI"
    kb = one(spans, name="retrieval EMUKB00001")
    assert kb["parent_span_id"] == steps[2]["span_id"]
    assert kb["attributes"]["gen_ai.data_source.id"] == "EMUKB00001"
    collaborator = one(spans, name="invoke_agent billing-agent")
    assert collaborator["parent_span_id"] == steps[3]["span_id"]
    (collab_step,) = children(spans, collaborator)
    (collab_chat,) = children(spans, collab_step)
    assert collab_chat["attributes"]["gen_ai.usage.input_tokens"] == 180
    assert steps[4]["attributes"]["aws.bedrock.guardrail.action"] == "NONE"
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 6
    assert sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats) == usage["input_tokens"]
    # Times are the ones the trace carries (metadata startTime/endTime), not arrival times:
    # the emulator's action group reports 20 ms, its model calls 30-40 ms.
    assert tool["end"] - tool["start"] == 20_000_000
    assert sorted((c["end"] - c["start"]) // 1_000_000 for c in chats) == [20, 30, 30, 30, 35, 40]
    # Steps follow one another in the trace's order, inside the agent call.
    assert all(a["end"] <= b["start"] for a, b in zip(steps, steps[1:]))
    assert CANARY not in json.dumps(spans)


def test_agentcore_runtime_receives_the_traceparent_of_the_invoke_agent_span(gateway, receiver, emulator):
    url, _ = gateway
    emulator.clear()
    tp, trace_id, parent = traceparent()
    r = requests.post(f"{url}/v1/chat/completions", headers={"traceparent": tp, "tracestate": "vendor=1"}, timeout=30,
                      json={"model": "agentcore-1", "messages": [{"role": "user", "content": f"hi {CANARY}"}]})
    assert r.status_code == 200, r.text
    spans = trace(receiver, trace_id)
    agent = one(spans, name="invoke_agent agentcore-1")
    assert agent["attributes"]["gen_ai.agent.id"] == AGENTCORE_ARN
    (call,) = emulator.invocations()
    sent = call["headers"]["traceparent"]
    assert sent == f"00-{trace_id}-{agent['span_id']}-01"
    assert call["headers"]["tracestate"] == "vendor=1"
    assert CANARY not in json.dumps(spans)


def test_an_error_sets_error_type(gateway, receiver):
    url, _ = gateway
    tp, trace_id, _ = traceparent()
    r = requests.post(f"{url}/v1/chat/completions", headers={"traceparent": tp}, timeout=30,
                      json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "x emulate:error=ThrottlingException"}]})
    assert r.status_code == 429
    spans = trace(receiver, trace_id)
    server = one(spans, kind="SERVER")
    assert server["attributes"]["http.response.status_code"] == 429
    agent = one(spans, kind="CLIENT")
    assert agent["attributes"]["error.type"] == "ThrottlingException"
    assert agent["status"]["code"] == 2  # STATUS_CODE_ERROR


def test_without_a_traceparent_a_new_trace_starts(gateway, receiver):
    url, _ = gateway
    r = requests.post(f"{url}/v1/chat/completions", timeout=30,
                      json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "hello"}]})
    assert r.status_code == 200
    session = r.headers["x-agentbridge-session-id"]
    deadline = time.time() + 30
    while time.time() < deadline:
        agent = [s for s in receiver.spans() if s["attributes"].get("gen_ai.conversation.id") == session]
        if agent:
            break
        time.sleep(0.1)
    (agent,) = agent
    server = one(trace(receiver, agent["trace_id"]), kind="SERVER")
    assert server["parent_span_id"] == ""


def test_sampler_off_exports_nothing_and_shutdown_flushes(receiver, emulator, tmp_path_factory):
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.http_port}"}
    off_url, off = start_gateway(tmp_path_factory, emulator, "off", {**endpoint, "OTEL_TRACES_SAMPLER": "always_off"})
    # A batch delay far longer than the test: only the graceful shutdown can send these spans.
    slow_url, slow = start_gateway(tmp_path_factory, emulator, "slow", {**endpoint, "OTEL_BSP_SCHEDULE_DELAY": "600000"})
    tp_off, off_trace, _ = traceparent()
    tp_slow, slow_trace, _ = traceparent()
    for url, tp in ((off_url, tp_off), (slow_url, tp_slow)):
        r = requests.post(f"{url}/v1/chat/completions", headers={"traceparent": tp}, timeout=30,
                          json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "hello"}]})
        assert r.status_code == 200
    assert not [s for s in receiver.spans() if s["trace_id"] == slow_trace]
    off.stop()
    slow.stop()
    assert off.p.returncode == 0 and slow.p.returncode == 0
    services = {s["service"] for s in receiver.spans()}
    assert "agentbridge-off" not in services
    assert not [s for s in receiver.spans() if s["trace_id"] == off_trace]
    assert len([s for s in receiver.spans() if s["trace_id"] == slow_trace]) >= 8


def test_an_unreachable_collector_is_logged_and_requests_go_on(emulator, tmp_path_factory):
    """The SDK's own reports of failed exports are compiled out: the gateway logs them (once,
    then at most a minute apart), with the endpoint's error, and answers as usual."""
    nobody = free_port()  # nothing listens there
    url, gw = start_gateway(tmp_path_factory, emulator, "unreachable",
                            {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{nobody}"})
    log = pathlib.Path(gw.log.name)
    try:
        for _ in range(3):
            r = requests.post(f"{url}/v1/chat/completions", headers={"traceparent": traceparent()[0]}, timeout=30,
                              json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": CANARY}]})
            assert r.status_code == 200
        deadline = time.time() + 30
        while "OpenTelemetry export failed" not in log.read_text() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # later batches fail too, within the minute: not logged again
    finally:
        gw.stop()
    lines = [line for line in log.read_text().splitlines() if "OpenTelemetry export failed" in line]
    assert len(lines) == 1, lines
    assert "agentbridge::otel" in lines[0] and "spans_dropped=" in lines[0], lines[0]
    assert CANARY not in log.read_text()
