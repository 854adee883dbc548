"""The emulator's AgentCore Runtime side, checked with a client no one here wrote: boto3's
`bedrock-agentcore` client (`invoke_agent_runtime`), plus raw HTTP where boto3 cannot go
(bearer tokens are sent through boto3 with its signing turned off)."""

from __future__ import annotations

import json

import boto3
import botocore
import pytest
import requests
from botocore.config import Config

from agentcore_fixtures import (  # noqa: F401  (agentcore_stack is a fixture)
    ACCOUNT_ID,
    BEARER_TOKEN,
    REGION,
    agentcore_stack,
    runtime_arn,
    start_emulator,
)
from conftest import TEST_AK, TEST_SK

ARN = runtime_arn("scripted_agent")
OAUTH_ARN = runtime_arn("oauth_agent")
SESSION = "session-0123456789-0123456789-0123456789"

ERRORS = {
    "ValidationException": 400,
    "UnauthorizedException": 401,
    "ServiceQuotaExceededException": 402,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "RetryableConflictException": 409,
    "RuntimeClientError": 424,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}


@pytest.fixture(scope="module")
def emulator():
    e = start_emulator()
    yield e
    e.stop()


def client(url, secret=TEST_SK, retries=1, **config):
    return boto3.client(
        "bedrock-agentcore",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=TEST_AK,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": retries, "mode": "standard"}, read_timeout=20, **config),
    )


def bearer_client(url, token):
    """boto3 with signing off and `Authorization: Bearer` added, as AWS documents for OAuth."""
    c = client(url, signature_version=botocore.UNSIGNED)

    def add_bearer(request, **_):
        request.headers["Authorization"] = f"Bearer {token}"

    c.meta.events.register("before-send.bedrock-agentcore.InvokeAgentRuntime", add_bearer)
    return c


def invoke(c, prompt, arn=ARN, session=SESSION, **kw):
    return c.invoke_agent_runtime(agentRuntimeArn=arn, runtimeSessionId=session, payload=json.dumps({"prompt": prompt}), **kw)


def sse_events(resp):
    """Reads the `data:` events one line at a time as they arrive (botocore's read(amt)
    waits for amt bytes, so 1-byte reads see each event as soon as it is sent)."""
    for line in resp["response"].iter_lines(chunk_size=1):
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


def test_json_answer_has_the_agents_content_type_and_echoes_the_session(emulator):
    resp = invoke(client(emulator.url), "Hi there")
    assert resp["statusCode"] == 200
    assert resp["contentType"] == "application/json"
    assert resp["runtimeSessionId"] == SESSION
    body = json.loads(resp["response"].read())
    assert body["result"]["content"][0]["text"] == "Emulated AgentCore runtime scripted_agent-AbCdE12345 received: Hi there"
    assert body["result"]["metadata"]["usage"]["inputTokens"] == 120


def test_boto3_generates_a_session_id_the_emulator_accepts_and_returns(emulator):
    c = client(emulator.url)
    resp = c.invoke_agent_runtime(agentRuntimeArn=ARN, payload=b'{"prompt": "no session"}')
    assert 33 <= len(resp["runtimeSessionId"]) <= 256
    assert emulator.invocations()[-1]["sessionId"] == resp["runtimeSessionId"]


def test_sse_answer_is_read_incrementally_before_the_stream_ends(emulator):
    # `emulate:stall` holds the connection open after two deltas: reading them can only
    # succeed if the events reach boto3 as they are sent (else the 20 s read timeout fails it).
    resp = invoke(client(emulator.url), "one two three four emulate:sse emulate:stall")
    assert resp["contentType"].startswith("text/event-stream")
    texts = []
    for event in sse_events(resp):
        delta = event.get("event", {}).get("contentBlockDelta", {}).get("delta", {}).get("text") if isinstance(event, dict) else None
        if delta is not None:
            texts.append(delta)
        if len(texts) == 2:
            break
    assert texts == ["Emulated", " AgentCore"]
    resp["response"].close()


def test_sse_answer_reports_usage_per_model_call(emulator):
    resp = invoke(client(emulator.url), "weather? emulate:sse emulate:calls=3")
    events = list(sse_events(resp))
    usage = [e["event"]["metadata"]["usage"] for e in events if isinstance(e, dict) and "metadata" in e.get("event", {})]
    assert [u["inputTokens"] for u in usage] == [120, 180, 240]
    assert [u["outputTokens"] for u in usage] == [15, 25, 35]
    repr_strings = [e for e in events if isinstance(e, str)]
    assert repr_strings and all(s.startswith("{'") for s in repr_strings)
    stops = [e["event"]["messageStop"]["stopReason"] for e in events if isinstance(e, dict) and "messageStop" in e.get("event", {})]
    assert stops == ["tool_use", "tool_use", "end_turn"]


def test_plain_string_sse_and_midstream_error_event(emulator):
    resp = invoke(client(emulator.url), "a b c d emulate:midstream_error")
    events = list(sse_events(resp))
    assert events[:2] == ["Emulated", " AgentCore"]
    assert events[2]["message"] == "An error occurred during streaming"
    assert events[2]["error_type"] == "RuntimeError"
    assert len(events) == 3


@pytest.mark.parametrize("name,status", sorted(ERRORS.items()))
def test_each_error_maps_to_botocores_exception_class_and_status(emulator, name, status):
    c = client(emulator.url)
    with pytest.raises(getattr(c.exceptions, name)) as e:
        invoke(c, f"fail emulate:error={name}")
    assert e.value.response["Error"]["Code"] == name
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert e.value.response["Error"]["Message"] == f"Emulated {name}"


def test_retryable_conflict_fails_the_first_attempt_then_botocore_retries_it(emulator):
    emulator.clear()
    session = "retry-session-0123456789-0123456789-01"
    resp = invoke(client(emulator.url, retries=3), "emulate:retryable_conflict_once hello", session=session)
    assert json.loads(resp["response"].read())["result"]["content"][0]["text"].endswith("hello")
    assert [i["status"] for i in emulator.invocations() if i["sessionId"] == session] == [409, 200]


def test_retryable_conflict_without_retries_surfaces_then_the_session_goes_through(emulator):
    c = client(emulator.url)
    session = "retry-session-1123456789-0123456789-01"
    with pytest.raises(c.exceptions.RetryableConflictException):
        invoke(c, "emulate:retryable_conflict_once", session=session)
    assert invoke(c, "emulate:retryable_conflict_once", session=session)["statusCode"] == 200


def test_a_bad_signature_is_refused(emulator):
    c = client(emulator.url, secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        invoke(c, "hi")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_signature_for_another_service_is_refused(emulator):
    c = client(emulator.url)

    def wrong_scope(request, **_):
        request.headers["Authorization"] = request.headers["Authorization"].replace(b"/bedrock-agentcore/", b"/bedrock/") if isinstance(request.headers["Authorization"], bytes) else request.headers["Authorization"].replace("/bedrock-agentcore/", "/bedrock/")

    c.meta.events.register("before-send.bedrock-agentcore.InvokeAgentRuntime", wrong_scope)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        invoke(c, "hi")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_qualifier_names_an_endpoint(emulator):
    emulator.clear()
    c = client(emulator.url)
    assert invoke(c, "hi", qualifier="prod")["statusCode"] == 200
    assert invoke(c, "hi", qualifier="DEFAULT")["statusCode"] == 200
    assert [i["qualifier"] for i in emulator.invocations()] == ["prod", "DEFAULT"]
    with pytest.raises(c.exceptions.ResourceNotFoundException) as e:
        invoke(c, "hi", qualifier="nope")
    assert "nope" in e.value.response["Error"]["Message"]


def test_unknown_runtime_and_malformed_arn(emulator):
    c = client(emulator.url)
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        invoke(c, "hi", arn=runtime_arn("scripted_agent", account="999999999999"))
    with pytest.raises(c.exceptions.ValidationException):
        invoke(c, "hi", arn=f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT_ID}:runtime/no_suffix")


def test_runtime_id_with_account_id_is_accepted(emulator):
    c = client(emulator.url)
    resp = invoke(c, "by id", arn="scripted_agent-AbCdE12345", accountId=ACCOUNT_ID)
    assert resp["statusCode"] == 200
    assert emulator.invocations()[-1]["runtimeArn"] == ARN


def test_session_id_length_is_checked_by_the_service(emulator):
    c = client(emulator.url, parameter_validation=False)
    with pytest.raises(c.exceptions.ValidationException) as e:
        invoke(c, "hi", session="too-short")
    assert "33 and 256" in e.value.response["Error"]["Message"]


def test_payload_over_100_mb_is_a_validation_error(emulator):
    c = client(emulator.url)
    with pytest.raises(c.exceptions.ValidationException) as e:
        c.invoke_agent_runtime(agentRuntimeArn=ARN, runtimeSessionId=SESSION, payload=b"x" * 100_000_001)
    assert "100000000" in e.value.response["Error"]["Message"]


def test_trace_context_and_user_id_reach_the_emulator_and_are_echoed(emulator):
    emulator.clear()
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    resp = invoke(client(emulator.url), "trace me", traceParent=tp, traceState="vendor=1", baggage="user=alice", runtimeUserId="user-42")
    assert (resp["traceParent"], resp["traceState"], resp["baggage"]) == (tp, "vendor=1", "user=alice")
    got = emulator.invocations()[-1]
    assert got["headers"]["traceparent"] == tp
    assert got["headers"]["tracestate"] == "vendor=1"
    assert got["headers"]["baggage"] == "user=alice"
    assert got["userId"] == "user-42"
    assert "authorization" not in got["headers"]


def test_bearer_token_on_an_oauth_runtime(emulator):
    emulator.clear()
    resp = invoke(bearer_client(emulator.url, BEARER_TOKEN), "with a token", arn=OAUTH_ARN)
    assert resp["statusCode"] == 200
    assert emulator.invocations()[-1]["auth"] == "bearer"
    bad = bearer_client(emulator.url, "wrong-token")
    with pytest.raises(bad.exceptions.UnauthorizedException):
        invoke(bad, "hi", arn=OAUTH_ARN)


def test_auth_method_must_match_the_runtime(emulator):
    c = client(emulator.url)
    with pytest.raises(c.exceptions.AccessDeniedException) as e:
        invoke(c, "sigv4 on an oauth runtime", arn=OAUTH_ARN)
    assert "Authorization method mismatch" in e.value.response["Error"]["Message"]
    b = bearer_client(emulator.url, BEARER_TOKEN)
    with pytest.raises(b.exceptions.AccessDeniedException):
        invoke(b, "bearer on a sigv4 runtime")


def test_missing_authentication(emulator):
    path = f"/runtimes/{requests.utils.quote(OAUTH_ARN, safe='')}/invocations"
    r = requests.post(emulator.url + path, data=b"{}", timeout=10)
    assert (r.status_code, r.headers["x-amzn-ErrorType"].split(":")[0]) == (401, "UnauthorizedException")
    path = f"/runtimes/{requests.utils.quote(ARN, safe='')}/invocations"
    r = requests.post(emulator.url + path, data=b"{}", timeout=10)
    assert r.status_code == 403
    assert r.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")


def test_forward_mode_relays_a_real_agents_stream(agentcore_stack):
    stack = agentcore_stack("text")
    resp = invoke(client(stack.emulator_url), "Hi there", arn=stack.runtime_arn, traceParent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert resp["contentType"].startswith("text/event-stream")
    assert resp["runtimeSessionId"] == SESSION
    assert "".join(sse_events(resp)) == "Hello from the Strands agent. You said: Hi there"
    got = stack.emulator.invocations()[-1]
    assert (got["mode"], got["status"]) == ("forward", 200)


def test_forward_mode_with_bearer_and_scripted_aws_errors(agentcore_stack):
    stack = agentcore_stack("result_json")
    resp = invoke(bearer_client(stack.emulator_url, BEARER_TOKEN), "Hi", arn=stack.oauth_runtime_arn)
    body = json.loads(resp["response"].read())
    assert body["result"]["content"][0]["text"] == "Hello from the Strands agent. You said: Hi"
    c = client(stack.emulator_url)
    with pytest.raises(c.exceptions.ThrottlingException):
        invoke(c, "emulate:error=ThrottlingException", arn=stack.runtime_arn)


def test_forward_mode_reports_an_agent_failure_as_runtime_client_error(agentcore_stack):
    stack = agentcore_stack("result_json")
    c = client(stack.emulator_url)
    with pytest.raises(c.exceptions.RuntimeClientError) as e:
        c.invoke_agent_runtime(agentRuntimeArn=stack.runtime_arn, runtimeSessionId=SESSION, payload=b"not json")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "Received error (400) from runtime" in e.value.response["Error"]["Message"]


def test_a_runtime_can_be_configured_for_oauth_by_id():
    listed = runtime_arn("listed_agent")
    e = start_emulator(extra=["--agentcore-oauth-runtime", "listed_agent-AbCdE12345"])
    try:
        assert invoke(bearer_client(e.url, BEARER_TOKEN), "hi", arn=listed)["statusCode"] == 200
        c = client(e.url)
        with pytest.raises(c.exceptions.AccessDeniedException):
            invoke(c, "hi", arn=listed)
    finally:
        e.stop()


def test_forward_mode_keeps_a_real_agents_session(agentcore_stack):
    stack = agentcore_stack("result_json")
    c = client(stack.emulator_url)
    text = lambda resp: json.loads(resp["response"].read())["result"]["content"][0]["text"]  # noqa: E731
    invoke(c, "my name is Ada", arn=stack.runtime_arn)
    assert text(invoke(c, "what did I say?", arn=stack.runtime_arn)) == 'Earlier you said: "my name is Ada"'
    other = "another-session-0123456789-0123456789-01"
    assert text(invoke(c, "what did I say?", arn=stack.runtime_arn, session=other)).startswith("You have not said")
    assert [i["sessionId"] for i in stack.emulator.invocations()] == [SESSION, SESSION, other]
