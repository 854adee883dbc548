"""Client conformance: the official OpenAI Python SDK against the real gateway binary."""
import json

import openai
import pytest
import requests
from openai import OpenAI

from conftest import MASTER_KEY


@pytest.fixture()
def client(gateway_url):
    # The reference docs' spelling: base_url without /v1.
    return OpenAI(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0)


@pytest.fixture()
def client_v1(gateway_url):
    return OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0)


def test_basic_completion_as_in_the_docs(client):
    response = client.chat.completions.create(
        model="bedrock-agent-1",
        messages=[{"role": "user", "content": "Help me prepare for the quarterly business review meeting"}],
    )
    assert response.object == "chat.completion"
    assert response.model == "bedrock-agent-1"
    assert response.choices[0].message.role == "assistant"
    assert response.choices[0].message.content.endswith("Help me prepare for the quarterly business review meeting")
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens > 0


def test_cost_header_on_non_streamed_responses(client):
    raw = client.chat.completions.with_raw_response.create(
        model="bedrock-agent-1", messages=[{"role": "user", "content": "hi"}])
    cost = float(raw.headers["x-litellm-response-cost"])
    usage = raw.parse().usage
    assert cost > 0
    # Emulator traces name Claude 3.5 Sonnet: $3 / $15 per million tokens.
    assert cost == pytest.approx(usage.prompt_tokens * 3e-6 + usage.completion_tokens * 15e-6)


def test_streaming_as_in_the_docs(client):
    stream = client.chat.completions.create(
        model="bedrock-agent-2",
        messages=[{"role": "user", "content": "Walk me through launching a new feature beta program"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("Walk me through launching a new feature beta program")
    assert len(chunks) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1


def test_stream_include_usage(client):
    chunks = list(client.chat.completions.create(
        model="bedrock-agent-1", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_models_list_with_and_without_v1(client, client_v1):
    for c in (client, client_v1):
        assert [m.id for m in c.models.list()] == ["bedrock-agent-1", "bedrock-agent-2"]


def test_v1_base_url_works_too(client_v1):
    r = client_v1.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content


def test_wrong_key_is_401(gateway_url):
    bad = OpenAI(base_url=gateway_url, api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401
    assert e.value.body["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_missing_key_is_401(gateway_url):
    r = requests.post(f"{gateway_url}/v1/chat/completions", json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert "Bearer" in r.json()["error"]["message"]


def test_unknown_model_is_404_listing_served_models(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-agent", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404
    msg = e.value.body["message"]
    assert "no-such-agent" in msg and "bedrock-agent-1" in msg and "bedrock-agent-2" in msg
    assert e.value.body["param"] == "model"


def test_upstream_throttle_is_429(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="bedrock-agent-1",
                                       messages=[{"role": "user", "content": "x emulate:error=ThrottlingException"}])
    assert e.value.status_code == 429
    assert e.value.body["code"] == "ThrottlingException"
    assert "Emulated ThrottlingException" in e.value.body["message"]


def test_upstream_throttle_while_streaming_before_output_is_429(client):
    with pytest.raises(openai.RateLimitError):
        list(client.chat.completions.create(model="bedrock-agent-1", stream=True,
             messages=[{"role": "user", "content": "x emulate:error=ThrottlingException"}]))


@pytest.mark.parametrize("code,status,exc", [
    ("AccessDeniedException", 403, openai.PermissionDeniedError),
    ("ResourceNotFoundException", 404, openai.NotFoundError),
    ("ValidationException", 400, openai.BadRequestError),
    ("ServiceQuotaExceededException", 429, openai.RateLimitError),
    ("DependencyFailedException", 424, openai.APIStatusError),
    ("BadGatewayException", 502, openai.InternalServerError),
    ("InternalServerException", 500, openai.InternalServerError),
    ("ModelNotReadyException", 503, openai.InternalServerError),
    ("ConflictException", 409, openai.ConflictError),
])
def test_every_aws_error_maps_to_its_status(client, code, status, exc):
    with pytest.raises(exc) as e:
        client.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": f"x emulate:error={code}"}])
    assert e.value.status_code == status
    assert e.value.body["code"] == code


@pytest.mark.parametrize("body,param,needle", [
    ("{not json", None, "not valid JSON"),
    (json.dumps({"model": "bedrock-agent-1", "messages": []}), "messages", "at least one message"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}), "model", "model"),
    (json.dumps({"model": "bedrock-agent-1"}), "messages", "messages"),
    (json.dumps({"model": "bedrock-agent-1", "messages": [{"role": "wizard", "content": "x"}]}), "messages[0].role", "role"),
    (json.dumps({"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "x"}], "api_base": "http://169.254.169.254"}), "api_base", "config"),
    (json.dumps({"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "x"}], "aws_secret_access_key": "x"}), "aws_secret_access_key", "config"),
])
def test_bad_requests_are_400_naming_the_field(gateway_url, body, param, needle):
    r = requests.post(f"{gateway_url}/v1/chat/completions", data=body,
                      headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert needle in err["message"]


def test_custom_parameters_reach_the_agent(client, recorded):
    client.chat.completions.create(
        model="bedrock-agent-1", messages=[{"role": "user", "content": "Hi who is ishaan cto of litellm"}],
        extra_body={"invocationId": "my-test-invocation-id", "memoryId": "mem-1", "temperature": 0.3})
    body = recorded()[-1]["body"]
    assert body["invocationId"] == "my-test-invocation-id"
    assert body["memoryId"] == "mem-1"
    assert body["enableTrace"] is True
    assert "temperature" not in body and "model" not in body


def test_config_extra_params_reach_the_agent_on_every_call(client, recorded):
    client.chat.completions.create(model="bedrock-agent-2", messages=[{"role": "user", "content": "x"}])
    rec = recorded()[-1]
    assert rec["body"]["invocationId"] == "my-test-invocation-id"
    assert rec["agentId"] == "AGENT456" and rec["agentAliasId"] == "ALIAS789"
    assert not any(k.startswith("aws_") for k in rec["body"])


def test_health_endpoints_need_no_key(gateway_url):
    assert requests.get(f"{gateway_url}/health/liveliness").status_code == 200
    assert requests.get(f"{gateway_url}/health/readiness").json()["status"] == "healthy"


def test_unknown_route_is_an_openai_404(gateway_url):
    r = requests.get(f"{gateway_url}/v1/nothing-here", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 404 and "error" in r.json()
