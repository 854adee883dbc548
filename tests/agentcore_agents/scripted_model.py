"""A Strands model provider that answers from a script instead of a network model.

It implements strands' `Model` interface, so the real `Agent` event loop, tool execution and
streaming run unchanged; only the model's output is fixed:

- With tools offered and no tool result yet in the conversation, the first call asks for the
  first tool (`stopReason: tool_use`); the next call answers with the tool's result.
- A prompt containing "what did I say" is answered with the conversation's earlier user texts
  (`RECALL_TEMPLATE`), so session continuity can be tested.
- Otherwise it answers `ANSWER_TEMPLATE` with the last user text, one text delta per word.
- Every call ends with one `metadata` event carrying that call's usage (`USAGE[n]` for the n-th
  call of the invocation), as Bedrock's ConverseStream does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

from strands.models.model import Model

#: The answer to a prompt; `{prompt}` is the last user text.
ANSWER_TEMPLATE = "Hello from the Strands agent. You said: {prompt}"
#: The answer once a tool returned; `{result}` is the tool's text.
TOOL_ANSWER_TEMPLATE = "The weather tool says: {result}"
#: The answer to "what did I say"; `{earlier}` is the earlier user texts, quoted, `; `-joined.
RECALL_TEMPLATE = "Earlier you said: {earlier}"
#: The answer to "what did I say" at the start of a conversation.
NOTHING_EARLIER = "You have not said anything earlier in this conversation."
#: Usage reported by the 1st, 2nd, ... model call of one invocation.
USAGE = [
    {"inputTokens": 120, "outputTokens": 15, "totalTokens": 135},
    {"inputTokens": 180, "outputTokens": 25, "totalTokens": 205},
    {"inputTokens": 240, "outputTokens": 35, "totalTokens": 275},
]


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        texts = [b["text"] for b in message.get("content", []) if "text" in b]
        if texts:
            return " ".join(texts)
    return ""


def _user_texts(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for message in messages:
        if message.get("role") == "user":
            texts = [b["text"] for b in message.get("content", []) if "text" in b]
            if texts:
                out.append(" ".join(texts))
    return out


def answer_for(messages: list[dict[str, Any]]) -> str:
    """The scripted answer to the conversation's last user text."""
    prompt = _last_user_text(messages)
    if "what did i say" in prompt.lower():
        earlier = _user_texts(messages)[:-1]
        if not earlier:
            return NOTHING_EARLIER
        return RECALL_TEMPLATE.format(earlier="; ".join(f'"{t}"' for t in earlier))
    return ANSWER_TEMPLATE.format(prompt=prompt)


def _tool_result_text(messages: list[dict[str, Any]]) -> str | None:
    if not messages or messages[-1].get("role") != "user":
        return None
    for block in messages[-1].get("content", []):
        result = block.get("toolResult")
        if result is not None:
            return " ".join(c.get("text", json.dumps(c.get("json"))) for c in result.get("content", []))
    return None


class ScriptedModel(Model):
    """A `Model` whose answers are scripted (see the module doc)."""

    def __init__(self, **config: Any) -> None:
        self.config = dict(config)
        self.calls = 0

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        return self.config

    async def structured_output(self, output_model, prompt, system_prompt=None, **kwargs) -> AsyncGenerator[dict, None]:
        raise NotImplementedError("the scripted model has no structured output")
        yield {}  # pragma: no cover

    async def stream(
        self,
        messages,
        tool_specs=None,
        system_prompt=None,
        *,
        tool_choice=None,
        **kwargs: Any,
    ) -> AsyncIterable[dict[str, Any]]:
        usage = USAGE[min(self._call_index(messages), len(USAGE) - 1)]
        yield {"messageStart": {"role": "assistant"}}
        tool_result = _tool_result_text(messages)
        if tool_specs and tool_result is None:
            spec = tool_specs[0]
            yield {
                "contentBlockStart": {
                    "start": {"toolUse": {"toolUseId": "tooluse_scripted_1", "name": spec["name"]}}
                }
            }
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps({"city": "Berlin"})}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
        else:
            if tool_result is not None:
                text = TOOL_ANSWER_TEMPLATE.format(result=tool_result)
            else:
                text = answer_for(messages)
            words = text.split(" ")
            for i, word in enumerate(words):
                yield {"contentBlockDelta": {"delta": {"text": word if i == 0 else " " + word}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
        yield {"metadata": {"usage": dict(usage), "metrics": {"latencyMs": 1}}}

    @staticmethod
    def _call_index(messages: list[dict[str, Any]]) -> int:
        """The n-th model call of this invocation: one per tool result since the last user text."""
        n = 0
        for message in reversed(messages):
            blocks = message.get("content", [])
            if message.get("role") == "user" and any("text" in b for b in blocks):
                break
            if message.get("role") == "user" and any("toolResult" in b for b in blocks):
                n += 1
        return n
