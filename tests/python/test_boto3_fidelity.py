"""The emulator's fidelity, judged by a client nobody here wrote: boto3's bedrock-agent-runtime."""
import datetime
import uuid

import boto3
import botocore.config
import botocore.exceptions
import pytest

from conftest import TEST_AK, TEST_SK


def client(url, secret=TEST_SK):
    return boto3.client(
        "bedrock-agent-runtime",
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id=TEST_AK,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def invoke(url, text, **kw):
    resp = client(url).invoke_agent(
        agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId=kw.pop("sessionId", str(uuid.uuid4())),
        inputText=text, enableTrace=True, **kw)
    return resp, list(resp["completion"])


def test_answer_in_one_chunk_with_traces_that_carry_usage(emulator_url):
    resp, events = invoke(emulator_url, "Hi there")
    assert resp["contentType"] == "application/json"
    chunks = [e["chunk"] for e in events if "chunk" in e]
    assert len(chunks) == 1
    assert b"".join(c["bytes"] for c in chunks).decode() == "Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: Hi there"
    traces = [e["trace"] for e in events if "trace" in e]
    steps = [next(iter(t["trace"])) for t in traces]
    assert {"preProcessingTrace", "orchestrationTrace", "postProcessingTrace"} <= set(steps)
    usages = [t["trace"][s]["modelInvocationOutput"]["metadata"]["usage"] for t, s in zip(traces, steps)
              if "modelInvocationOutput" in t["trace"][s]]
    assert len(usages) == 3 and all(isinstance(u["inputTokens"], int) for u in usages)
    assert isinstance(traces[0]["eventTime"], datetime.datetime)
    model = traces[0]["trace"]["preProcessingTrace"]["modelInvocationInput"]["foundationModel"]
    assert model.startswith("anthropic.claude")


def test_streamed_answer_arrives_in_several_chunks(emulator_url):
    _, events = invoke(emulator_url, "Tell me something long enough to stream",
                       streamingConfigurations={"streamFinalResponse": True})
    chunks = [e["chunk"]["bytes"] for e in events if "chunk" in e]
    assert len(chunks) > 2
    assert b"".join(chunks).decode().endswith("Tell me something long enough to stream")


def test_session_id_and_memory_id_come_back_in_headers(emulator_url):
    resp, _ = invoke(emulator_url, "hi", sessionId="fixed-session-1", memoryId="mem-7")
    assert resp["sessionId"] == "fixed-session-1"
    assert resp["memoryId"] == "mem-7"


def test_return_of_control_round_trip(emulator_url):
    sid = str(uuid.uuid4())
    _, events = invoke(emulator_url, "Weather in Paris? emulate:return_control", sessionId=sid)
    rc = [e["returnControl"] for e in events if "returnControl" in e]
    assert len(rc) == 1
    fn = rc[0]["invocationInputs"][0]["functionInvocationInput"]
    assert (fn["actionGroup"], fn["function"]) == ("WeatherAPI", "get_forecast")
    resp = client(emulator_url).invoke_agent(
        agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId=sid, enableTrace=True,
        sessionState={"invocationId": rc[0]["invocationId"], "returnControlInvocationResults": [
            {"functionResult": {"actionGroup": "WeatherAPI", "function": "get_forecast",
                                "responseBody": {"TEXT": {"body": "sunny, 24C"}}}}]})
    text = b"".join(e["chunk"]["bytes"] for e in resp["completion"] if "chunk" in e).decode()
    assert text == "The tool returned: sunny, 24C"


def test_api_return_of_control(emulator_url):
    _, events = invoke(emulator_url, "Order status emulate:return_control_api")
    api = [e for e in events if "returnControl" in e][0]["returnControl"]["invocationInputs"][0]["apiInvocationInput"]
    assert (api["apiPath"], api["httpMethod"]) == ("/orders/{orderId}", "GET")


def test_citations_and_files_parse(emulator_url):
    _, events = invoke(emulator_url, "Q3? emulate:citations emulate:files")
    chunk = [e["chunk"] for e in events if "chunk" in e][-1]
    refs = chunk["attribution"]["citations"][0]["retrievedReferences"]
    assert refs[0]["location"]["s3Location"]["uri"] == "s3://emulator-kb/reports/q3-2026.pdf"
    span = chunk["attribution"]["citations"][0]["generatedResponsePart"]["textResponsePart"]["span"]
    assert span["start"] == 0 and span["end"] > 0
    files = [e["files"] for e in events if "files" in e][0]["files"]
    assert files[0]["name"] == "summary.csv" and files[0]["bytes"].startswith(b"quarter")


def test_exception_event_inside_the_stream(emulator_url):
    resp = client(emulator_url).invoke_agent(
        agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId=str(uuid.uuid4()),
        inputText="x emulate:exception=throttlingException", enableTrace=True)
    got = []
    with pytest.raises(botocore.exceptions.EventStreamError) as e:
        for ev in resp["completion"]:
            got.append(ev)
    assert any("chunk" in ev for ev in got), "the exception comes after the first chunk"
    assert e.value.response["Error"]["Code"] == "throttlingException"
    assert "during the stream" in e.value.response["Error"]["Message"]


@pytest.mark.parametrize("code,status", [
    ("ThrottlingException", 429), ("AccessDeniedException", 403), ("ResourceNotFoundException", 404),
    ("ValidationException", 400), ("ServiceQuotaExceededException", 400), ("DependencyFailedException", 424),
    ("BadGatewayException", 502), ("InternalServerException", 500), ("ModelNotReadyException", 424),
    ("ConflictException", 409)])
def test_errors_before_the_stream_parse_as_modeled_exceptions(emulator_url, code, status):
    c = client(emulator_url)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.invoke_agent(agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId="s-err",
                       inputText=f"x emulate:error={code}")
    assert e.value.response["Error"]["Code"] == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert isinstance(e.value, getattr(c.exceptions, code))


def test_bad_signature_is_refused(emulator_url):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(emulator_url, secret="wrong-secret").invoke_agent(
            agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId="s-sig", inputText="hi")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_validation_follows_the_api_model(emulator_url):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(emulator_url).invoke_agent(agentId="L1RT58GYRW", agentAliasId="MFPSBCXYTW", sessionId="has space",
                                          inputText="hi")
    assert e.value.response["Error"]["Code"] == "ValidationException"
