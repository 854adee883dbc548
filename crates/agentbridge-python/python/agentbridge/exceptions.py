"""The exceptions agentbridge raises.

With the OpenAI SDK installed (``pip install openai``) each class also subclasses the OpenAI
SDK's class of the same name, as LiteLLM's exceptions do, so ``except openai.RateLimitError``
keeps working; without it they subclass this module's stand-ins of the same shape
(``message``, ``status_code``, ``code``, ``param``, ``type``, ``body``). Every one is also an
:class:`AgentbridgeError`. The message is the Rust SDK's; for AWS errors it starts with AWS's
error name (``ThrottlingException: Rate exceeded``). The class is chosen from the SDK's
``Error::status_code()``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Type

try:  # optional: only to subclass the OpenAI SDK's exceptions
    import openai
except ImportError:  # exercised by the no-openai test, in a subprocess
    openai = None  # type: ignore[assignment]


def _openai_http() -> Any:
    """The HTTP library whose Request/Response the installed OpenAI SDK's exceptions take
    (``httpx`` in openai 1.x and 2.x, ``httpx2`` in 3.x)."""
    exceptions_module = getattr(openai, "_exceptions", None)
    for name in ("httpx2", "httpx"):
        module = getattr(exceptions_module, name, None)
        if module is not None:
            return module
    return None


httpx = _openai_http() if openai is not None else None

__all__ = [
    "AgentbridgeError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "InternalServerError",
    "APIConnectionError",
    "APITimeoutError",
    "Timeout",
]

# The request an OpenAI exception must carry: the agent endpoint, not a real request object.
_ENDPOINT = "https://bedrock-agent-runtime.amazonaws.com/"


class AgentbridgeError(Exception):
    """Base of every agentbridge error. ``status_code`` is the HTTP status the proxy would
    answer with; ``code`` the AWS error name (``ThrottlingException``) or agentbridge's code
    (``invalid_request``, ``upstream_unreachable``...); ``param`` the argument at fault;
    ``model`` the model called; ``llm_provider`` is ``"bedrock"``."""

    message: str
    status_code: int
    code: Optional[str]
    param: Optional[str]
    type: Optional[str]
    model: Optional[str]
    retryable: bool
    llm_provider = "bedrock"

    def _fill(self, message: str, status_code: int, code: Optional[str], param: Optional[str],
              model: Optional[str], retryable: bool, type: Optional[str]) -> None:  # noqa: A002
        self.args = (message,)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.param = param
        self.type = type
        self.model = model
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message


# Stand-ins with the OpenAI SDK's hierarchy, used when it is not installed.
class _APIError(Exception):
    def __init__(self, message: str, request: Any = None, *, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body


class _APIStatusError(_APIError):
    def __init__(self, message: str, *, response: Any = None, body: Any = None) -> None:
        super().__init__(message, None, body=body)
        self.response = response


class _APIConnectionError(_APIError):
    def __init__(self, *, message: str = "Connection error.", request: Any = None) -> None:
        super().__init__(message, request)


class _APITimeoutError(_APIConnectionError):
    def __init__(self, request: Any = None) -> None:
        super().__init__(message="Request timed out.", request=request)


_STAND_INS: Dict[str, Type[Exception]] = {
    "APIStatusError": _APIStatusError,
    "APIConnectionError": _APIConnectionError,
    "APITimeoutError": _APITimeoutError,
}


def _base(name: str) -> Type[Exception]:
    if openai is not None:
        return getattr(openai, name)
    if name in _STAND_INS:
        return _STAND_INS[name]
    stand_in = type(name, (_APIStatusError,), {"__module__": __name__})
    _STAND_INS[name] = stand_in
    return stand_in


def _request() -> Any:
    return httpx.Request("POST", _ENDPOINT) if httpx is not None else None


class _StatusError(AgentbridgeError):
    def __init__(self, message: str, *, status_code: int, code: Optional[str] = None,
                 param: Optional[str] = None, model: Optional[str] = None, retryable: bool = False,
                 type: Optional[str] = None) -> None:  # noqa: A002
        body = {"message": message, "type": type, "param": param, "code": code}
        response = httpx.Response(status_code, request=_request()) if httpx is not None else None
        super().__init__(message, response=response, body=body)  # type: ignore[call-arg]
        self._fill(message, status_code, code, param, model, retryable, type)


class APIError(_StatusError, _base("APIStatusError")):  # type: ignore[misc]
    """An error status without a more specific class (e.g. DependencyFailedException, 424)."""


class BadRequestError(_StatusError, _base("BadRequestError")):  # type: ignore[misc]
    """400: an invalid argument or model, or AWS's ValidationException."""


class AuthenticationError(_StatusError, _base("AuthenticationError")):  # type: ignore[misc]
    """401: AWS rejected the signature or the credentials."""


class PermissionDeniedError(_StatusError, _base("PermissionDeniedError")):  # type: ignore[misc]
    """403: AccessDeniedException."""


class NotFoundError(_StatusError, _base("NotFoundError")):  # type: ignore[misc]
    """404: ResourceNotFoundException (no such agent or alias)."""


class ConflictError(_StatusError, _base("ConflictError")):  # type: ignore[misc]
    """409: ConflictException."""


class RateLimitError(_StatusError, _base("RateLimitError")):  # type: ignore[misc]
    """429: ThrottlingException or ServiceQuotaExceededException."""


class InternalServerError(_StatusError, _base("InternalServerError")):  # type: ignore[misc]
    """5xx: InternalServerException, BadGatewayException, ModelNotReadyException, a malformed
    event stream, or credentials that could not be resolved."""


class APIConnectionError(AgentbridgeError, _base("APIConnectionError")):  # type: ignore[misc]
    """The agent endpoint could not be reached."""

    def __init__(self, message: str, *, status_code: int = 502, code: Optional[str] = None,
                 param: Optional[str] = None, model: Optional[str] = None, retryable: bool = True,
                 type: Optional[str] = None) -> None:  # noqa: A002
        super().__init__(message=message, request=_request())  # type: ignore[call-arg]
        self._fill(message, status_code, code, param, model, retryable, type)


class APITimeoutError(AgentbridgeError, _base("APITimeoutError")):  # type: ignore[misc]
    """An upstream timeout expired (``timeout``, or the wait for the next event)."""

    def __init__(self, message: str, *, status_code: int = 504, code: Optional[str] = None,
                 param: Optional[str] = None, model: Optional[str] = None, retryable: bool = False,
                 type: Optional[str] = None) -> None:  # noqa: A002
        super().__init__(request=_request())  # type: ignore[call-arg]
        self._fill(message, status_code, code, param, model, retryable, type)


Timeout = APITimeoutError  # LiteLLM's name

_BY_STATUS: Dict[int, Type[AgentbridgeError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def _from_native(status_code: int, code: str, message: str, param: Optional[str], model: str,
                 retryable: bool, type: str) -> AgentbridgeError:  # noqa: A002
    """The exception for an error of the Rust SDK (called by the native module)."""
    if code == "upstream_unreachable":
        cls: Type[AgentbridgeError] = APIConnectionError
    elif code == "upstream_timeout":
        cls = APITimeoutError
    elif status_code in _BY_STATUS:
        cls = _BY_STATUS[status_code]
    elif status_code >= 500:
        cls = InternalServerError
    else:
        cls = APIError
    return cls(message, status_code=status_code, code=code, param=param, model=model,  # type: ignore[call-arg]
               retryable=retryable, type=type)
