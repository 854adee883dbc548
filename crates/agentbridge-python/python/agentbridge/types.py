"""Response objects that read like LiteLLM's and OpenAI's.

Each is a ``dict`` (so ``response["choices"]``, ``json.dumps(response)`` and passing
``response.choices[0].message`` back in ``messages`` all work) whose keys also read as
attributes (``response.choices[0].message.content``). Fields OpenAI always has are present
(``None`` when absent). The data comes from the Rust SDK, serialized with its field names;
nothing here interprets an answer.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar, Dict, List, Optional, Type

__all__ = [
    "ModelResponse",
    "ModelResponseStream",
    "Choices",
    "StreamingChoices",
    "Message",
    "Delta",
    "Usage",
    "ChatCompletionMessageToolCall",
    "Function",
    "Annotation",
    "UrlCitation",
]


class _Record(dict):
    """A dict whose keys are also attributes; nested dicts become the record types named in
    ``_nested``, and the keys in ``_defaults`` are always present."""

    __slots__ = ()
    _defaults: ClassVar[Dict[str, Any]] = {}
    _nested: ClassVar[Dict[str, Type["_Record"]]] = {}

    def __init__(self, data: Optional[Dict[str, Any]] = None, **fields: Any) -> None:
        super().__init__(data or (), **fields)
        for key, default in self._defaults.items():
            if key not in self:
                dict.__setitem__(self, key, default)
        for key, kind in self._nested.items():
            value = self.get(key)
            if isinstance(value, list):
                dict.__setitem__(self, key, [_as(kind, v) for v in value])
            elif isinstance(value, dict):
                dict.__setitem__(self, key, _as(kind, value))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name in type(self).__dict__:
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    def model_dump(self, **_: Any) -> Dict[str, Any]:
        """A plain ``dict`` copy, nested records included (pydantic's ``model_dump``)."""
        return _plain(self)

    def model_dump_json(self, indent: Optional[int] = None, **_: Any) -> str:
        """The JSON text (pydantic's ``model_dump_json``)."""
        return json.dumps(self, indent=indent)

    def dict(self) -> Dict[str, Any]:  # noqa: A003 - LiteLLM's and pydantic v1's name
        """The same as :meth:`model_dump`."""
        return _plain(self)

    def json(self, **kwargs: Any) -> str:
        """The same as :meth:`model_dump_json`."""
        return json.dumps(self, **kwargs)


def _as(kind: Type[_Record], value: Any) -> Any:
    return kind(value) if isinstance(value, dict) and not isinstance(value, kind) else value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Function(_Record):
    """A called function: ``name`` and ``arguments`` (a JSON object as a string)."""

    __slots__ = ()
    name: str
    arguments: str


class ChatCompletionMessageToolCall(_Record):
    """A tool call (an agent's return of control): ``id``, ``type`` and ``function``. In a
    streamed ``Delta`` it also has ``index``."""

    __slots__ = ()
    _nested = {"function": Function}
    id: str
    type: str
    function: Function


class UrlCitation(_Record):
    """The cited location (``url``, ``title``) and the span of the answer it supports."""

    __slots__ = ()
    url: str
    title: str
    start_index: int
    end_index: int


class Annotation(_Record):
    """An OpenAI annotation: ``{"type": "url_citation", "url_citation": {...}}``."""

    __slots__ = ()
    _nested = {"url_citation": UrlCitation}
    type: str
    url_citation: UrlCitation


class Message(_Record):
    """The assistant's message: ``content``, ``tool_calls``, ``annotations``; the agent's raw
    ``citations`` and output ``files`` when it sent any."""

    __slots__ = ()
    _defaults = {"content": None, "role": "assistant", "tool_calls": None, "function_call": None,
                 "annotations": None}
    _nested = {"tool_calls": ChatCompletionMessageToolCall, "annotations": Annotation}
    content: Optional[str]
    role: str
    tool_calls: Optional[List[ChatCompletionMessageToolCall]]
    function_call: None
    annotations: Optional[List[Annotation]]


class Delta(_Record):
    """What a chunk adds: ``content``, ``role`` (first chunk), ``tool_calls``, ``annotations``."""

    __slots__ = ()
    _defaults = {"content": None, "role": None, "tool_calls": None, "function_call": None}
    _nested = {"tool_calls": ChatCompletionMessageToolCall, "annotations": Annotation}
    content: Optional[str]
    role: Optional[str]
    tool_calls: Optional[List[ChatCompletionMessageToolCall]]
    function_call: None


class Usage(_Record):
    """Tokens summed over every model invocation of the agent's trace."""

    __slots__ = ()
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Choices(_Record):
    """The one choice of a response: ``message`` and ``finish_reason``."""

    __slots__ = ()
    _defaults = {"logprobs": None}
    _nested = {"message": Message}
    index: int
    message: Message
    finish_reason: str
    logprobs: None


class StreamingChoices(_Record):
    """The one choice of a chunk: ``delta`` and, on the last, ``finish_reason``."""

    __slots__ = ()
    _defaults = {"finish_reason": None, "logprobs": None}
    _nested = {"delta": Delta}
    index: int
    delta: Delta
    finish_reason: Optional[str]
    logprobs: None


class ModelResponse(_Record):
    """A ``chat.completion``. The cost in USD is ``response_cost``, also in
    ``_hidden_params["response_cost"]`` where LiteLLM keeps it; ``session_id`` is the agent
    session (send it back as ``session_id`` to continue the conversation)."""

    __slots__ = ("_hidden_params",)
    _defaults = {"system_fingerprint": None}
    _nested = {"choices": Choices, "usage": Usage}
    id: str
    object: str
    created: int
    model: str
    choices: List[Choices]
    usage: Usage
    session_id: str
    system_fingerprint: None
    _hidden_params: Dict[str, Any]

    def __init__(self, data: Optional[Dict[str, Any]] = None, **fields: Any) -> None:
        super().__init__(data, **fields)
        self._hidden_params = {"custom_llm_provider": "bedrock", "response_cost": None}

    @property
    def response_cost(self) -> Optional[float]:
        """The cost of this call in USD (LiteLLM: ``_hidden_params["response_cost"]``)."""
        return self._hidden_params.get("response_cost")


class ModelResponseStream(_Record):
    """A ``chat.completion.chunk``; ``usage`` on the last one when
    ``stream_options={"include_usage": True}``."""

    __slots__ = ()
    _defaults = {"usage": None, "system_fingerprint": None}
    _nested = {"choices": StreamingChoices, "usage": Usage}
    id: str
    object: str
    created: int
    model: str
    choices: List[StreamingChoices]
    usage: Optional[Usage]
    system_fingerprint: None


def _model_response(data: Dict[str, Any], cost: float) -> ModelResponse:
    response = ModelResponse(data)
    response._hidden_params["response_cost"] = cost
    return response


def _chunk(data: Dict[str, Any]) -> ModelResponseStream:
    return ModelResponseStream(data)
