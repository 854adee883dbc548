"""agentbridge: LiteLLM's ``completion()`` for Amazon Bedrock Agents, on a Rust core.

Change one import and LiteLLM's SDK examples work::

    from agentbridge import completion

    response = completion(
        model="bedrock/agent/L1RT58GYRW/MFPSBCXYTW",
        messages=[{"role": "user", "content": "Summarise our Q3 sales"}],
    )
    print(response.choices[0].message.content)
    print(f"Response cost: ${response._hidden_params['response_cost']}")

``completion(..., stream=True)`` returns an iterator of chunks as the agent sends them;
``acompletion`` is the asyncio version. LiteLLM's keyword arguments set credentials, region,
endpoint, timeout and retries per call (``aws_access_key_id``, ``aws_region_name``,
``api_base``, ``timeout``, ``num_retries``, ...); any other keyword (``invocationId``,
``sessionState``, ...) goes to the agent. Errors are :mod:`agentbridge.exceptions`, which
subclass the OpenAI SDK's exceptions when it is installed.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Union

from . import exceptions, types
from ._agentbridge import AsyncStream, Stream, completion
from ._agentbridge import acompletion as _acompletion
from .exceptions import (
    AgentbridgeError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    Timeout,
)
from .types import ModelResponse, ModelResponseStream

__all__ = [
    "completion",
    "acompletion",
    "Stream",
    "AsyncStream",
    "ModelResponse",
    "ModelResponseStream",
    "types",
    "exceptions",
    "AgentbridgeError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Timeout",
]


async def acompletion(
    model: str,
    messages: Iterable[Dict[str, Any]],
    stream: bool = False,
    **params: Any,
) -> Union[ModelResponse, AsyncStream]:
    """:func:`completion` for asyncio: ``await acompletion(...)`` gives a
    :class:`~agentbridge.types.ModelResponse`, or with ``stream=True`` an
    :class:`AsyncStream` to read with ``async for``. The call runs on agentbridge's shared
    Rust runtime, never blocking the event loop; cancelling the task drops the call."""
    return await _acompletion(model, messages, stream, **params)
