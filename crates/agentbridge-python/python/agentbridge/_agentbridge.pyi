"""Type stubs for the native module (Rust, PyO3). Import from ``agentbridge`` instead."""
from typing import Any, AsyncIterator, Awaitable, Dict, Iterable, Iterator, Literal, Optional, Union, overload

from .types import ModelResponse, ModelResponseStream

@overload
def completion(
    model: str,
    messages: Iterable[Dict[str, Any]],
    stream: Literal[False] = False,
    *,
    aws_access_key_id: Optional[str] = None,
    aws_secret_access_key: Optional[str] = None,
    aws_session_token: Optional[str] = None,
    aws_region_name: Optional[str] = None,
    aws_profile_name: Optional[str] = None,
    aws_role_name: Optional[str] = None,
    aws_session_name: Optional[str] = None,
    api_base: Optional[str] = None,
    timeout: Optional[float] = None,
    num_retries: Optional[int] = None,
    session_id: Optional[str] = None,
    **params: Any,
) -> ModelResponse: ...
@overload
def completion(
    model: str,
    messages: Iterable[Dict[str, Any]],
    stream: Literal[True],
    *,
    aws_access_key_id: Optional[str] = None,
    aws_secret_access_key: Optional[str] = None,
    aws_session_token: Optional[str] = None,
    aws_region_name: Optional[str] = None,
    aws_profile_name: Optional[str] = None,
    aws_role_name: Optional[str] = None,
    aws_session_name: Optional[str] = None,
    api_base: Optional[str] = None,
    timeout: Optional[float] = None,
    num_retries: Optional[int] = None,
    session_id: Optional[str] = None,
    stream_options: Optional[Dict[str, Any]] = None,
    **params: Any,
) -> "Stream":
    """One chat completion from the agent named by ``model``
    (``bedrock/agent/{AGENT_ID}/{ALIAS_ID}``), as LiteLLM's ``completion``.

    Keyword arguments: LiteLLM's deployment settings (credentials, ``aws_region_name``,
    ``api_base``, ``timeout`` in seconds, ``num_retries``), OpenAI options (accepted, not sent:
    agents do not sample), ``session_id`` (or ``sessionID``) to continue an agent session, and
    anything else, which goes to the agent (``invocationId``, ``sessionState``, ...). ``None``
    values count as not given.

    Returns a :class:`~agentbridge.types.ModelResponse`, or with ``stream=True`` a
    :class:`Stream`. Waits without holding the GIL; Ctrl-C raises ``KeyboardInterrupt`` and
    drops the call. Raises :mod:`agentbridge.exceptions` errors.
    """
    ...

def acompletion(
    model: str,
    messages: Iterable[Dict[str, Any]],
    stream: bool = False,
    **params: Any,
) -> Awaitable[Union[ModelResponse, "AsyncStream"]]:
    """:func:`completion` for asyncio (needs a running event loop)."""
    ...

class Stream(Iterator[ModelResponseStream]):
    """The chunks of ``completion(..., stream=True)``, each yielded as the agent sends it.
    ``close()``, leaving a ``with`` block, or dropping the stream (as when a ``for`` loop over
    ``completion(...)`` is left with ``break``) closes the upstream call."""

    def __iter__(self) -> "Stream": ...
    def __next__(self) -> ModelResponseStream: ...
    def close(self) -> None:
        """Closes the upstream call; iteration then ends."""
    def __enter__(self) -> "Stream": ...
    def __exit__(self, *exc: Any) -> bool: ...
    @property
    def response_cost(self) -> Optional[float]:
        """The cost in USD once the stream has ended cleanly, else ``None``."""
    @property
    def session_id(self) -> str:
        """The agent session of this answer."""

class AsyncStream(AsyncIterator[ModelResponseStream]):
    """The chunks of ``await acompletion(..., stream=True)``, for ``async for``.
    ``await aclose()``, leaving an ``async with`` block, or dropping it closes the upstream
    call."""

    def __aiter__(self) -> "AsyncStream": ...
    def __anext__(self) -> Awaitable[ModelResponseStream]: ...
    def aclose(self) -> Awaitable[None]:
        """Closes the upstream call; iteration then ends."""
    def __aenter__(self) -> Awaitable["AsyncStream"]: ...
    def __aexit__(self, *exc: Any) -> Awaitable[None]: ...
    @property
    def response_cost(self) -> Optional[float]:
        """The cost in USD once the stream has ended cleanly, else ``None``."""
    @property
    def session_id(self) -> str:
        """The agent session of this answer."""
