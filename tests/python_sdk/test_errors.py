"""Every failure is an exception that subclasses the OpenAI SDK's class for its status (as
LiteLLM's do), keeps AWS's error name in its message, and is an AgentbridgeError."""
import os
import subprocess
import sys

import openai
import pytest

import agentbridge
from agentbridge import completion
from conftest import MODEL, TEST_AK, free_port, user

# (exception event the agent sends, agentbridge class, OpenAI class, status)
AWS_ERRORS = [
    ("throttlingException", agentbridge.RateLimitError, openai.RateLimitError, 429),
    ("serviceQuotaExceededException", agentbridge.RateLimitError, openai.RateLimitError, 429),
    ("accessDeniedException", agentbridge.PermissionDeniedError, openai.PermissionDeniedError, 403),
    ("resourceNotFoundException", agentbridge.NotFoundError, openai.NotFoundError, 404),
    ("validationException", agentbridge.BadRequestError, openai.BadRequestError, 400),
    ("conflictException", agentbridge.ConflictError, openai.ConflictError, 409),
    ("internalServerException", agentbridge.InternalServerError, openai.InternalServerError, 500),
    ("badGatewayException", agentbridge.InternalServerError, openai.InternalServerError, 502),
    ("modelNotReadyException", agentbridge.InternalServerError, openai.InternalServerError, 503),
    ("dependencyFailedException", agentbridge.APIError, openai.APIStatusError, 424),
]


def check(e, cls, openai_cls, status, aws_name=None):
    assert type(e) is cls
    assert isinstance(e, openai_cls) and isinstance(e, agentbridge.AgentbridgeError)
    assert e.status_code == status and e.llm_provider == "bedrock" and e.model == MODEL
    if aws_name:
        assert str(e).startswith(aws_name + ":") and e.code == aws_name and e.message == str(e)


@pytest.mark.parametrize("event,cls,openai_cls,status", AWS_ERRORS, ids=[a[0] for a in AWS_ERRORS])
def test_aws_exception_event_raises_its_class(emu, event, cls, openai_cls, status):
    aws_name = event[0].upper() + event[1:]
    with pytest.raises(openai_cls) as e:
        completion(model=MODEL, messages=user(f"x emulate:exception={event}"), num_retries=0)
    check(e.value, cls, openai_cls, status, aws_name)
    if isinstance(e.value, openai.APIStatusError):
        assert e.value.response.status_code == status and e.value.body["code"] == aws_name


def test_error_before_the_stream_raises_at_the_call(emu):
    with pytest.raises(openai.RateLimitError) as e:
        completion(model=MODEL, messages=user("x emulate:error=ThrottlingException"), stream=True, num_retries=0)
    check(e.value, agentbridge.RateLimitError, openai.RateLimitError, 429, "ThrottlingException")


def test_midstream_exception_raises_during_iteration_after_the_first_chunks(emu):
    got = []
    with pytest.raises(openai.InternalServerError) as e:
        for chunk in completion(model=MODEL, messages=user("x emulate:exception=internalServerException"),
                                stream=True):
            got.append(chunk)
    assert got and got[0].choices[0].delta.content
    assert "InternalServerException" in str(e.value)


def test_wrong_credentials_are_an_authentication_error(emu):
    with pytest.raises(openai.AuthenticationError) as e:
        completion(model=MODEL, messages=user("x"), aws_access_key_id=TEST_AK, aws_secret_access_key="wrong")
    check(e.value, agentbridge.AuthenticationError, openai.AuthenticationError, 401)
    assert "Exception" in e.value.code  # AWS's error name, e.g. InvalidSignatureException


def test_unreachable_endpoint_is_a_connection_error(emu):
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(openai.APIConnectionError) as e:
        completion(model=MODEL, messages=user("x"), api_base=closed, num_retries=0)
    assert type(e.value) is agentbridge.APIConnectionError and e.value.code == "upstream_unreachable"
    assert not isinstance(e.value, openai.APITimeoutError)


def test_expired_timeout_is_a_timeout_error(emu):
    with pytest.raises(openai.APITimeoutError) as e:
        completion(model=MODEL, messages=user("x emulate:slow=3000"), timeout=0.5, num_retries=0)
    assert type(e.value) is agentbridge.APITimeoutError and e.value.code == "upstream_timeout"
    assert agentbridge.Timeout is agentbridge.APITimeoutError


def test_bad_model_and_bad_messages_are_bad_requests_naming_the_argument(emu):
    with pytest.raises(openai.BadRequestError) as e:
        completion(model="gpt-4o", messages=user("x"))
    assert e.value.param == "model" and "bedrock/agent" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        completion(model=MODEL, messages=[{"content": "no role"}])
    assert e.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as e:
        completion(model=MODEL, messages=user("x"), sessionState=object())
    assert e.value.param == "sessionState"


NO_OPENAI = """
import sys
sys.modules["openai"] = None  # as if it were not installed
import agentbridge
try:
    agentbridge.completion(model=sys.argv[1], messages=[{"role": "user", "content": "x emulate:exception=throttlingException"}])
except agentbridge.RateLimitError as e:
    names = [c.__module__ + "." + c.__name__ for c in type(e).__mro__]
    assert not any(n.startswith("openai") for n in names), names
    assert e.status_code == 429 and str(e).startswith("ThrottlingException:"), e
    print("ok", type(e).__name__)
"""


def test_without_openai_installed_the_same_classes_stand_alone(aws_env):
    out = subprocess.run([sys.executable, "-c", NO_OPENAI, MODEL], env=dict(os.environ, **aws_env),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok RateLimitError"
