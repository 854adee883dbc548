"""A real Bedrock AgentCore Runtime agent: `BedrockAgentCoreApp` serving a Strands `Agent`.

The model is `ScriptedModel` (no network). `AGENT_SHAPE` picks the entrypoint, in the shapes
AgentCore agents are commonly written:

| AGENT_SHAPE | entrypoint |
|---|---|
| `raw_events` | `async for event in agent.stream_async(prompt): yield event` |
| `text` | yields only the text of each `data` event |
| `result_json` | `return {"result": agent(prompt).message}` (one JSON body) |
| `result_text` | `return str(agent(prompt))` (a JSON string body) |
| `raise_midstream` | yields the text of the first two `data` events, then raises |
| `tool` | raw events of an agent with a `@tool` the model calls first |

Run: `AGENT_SHAPE=text AGENT_PORT=8081 python app.py` (listens on 127.0.0.1:AGENT_PORT,
default 8080, as the AgentCore container contract says: `POST /invocations`, `GET /ping`).
"""

from __future__ import annotations

import os
import sys

from bedrock_agentcore.runtime import BedrockAgentCoreApp
from strands import Agent, tool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scripted_model import ScriptedModel  # noqa: E402

SHAPES = ("raw_events", "text", "result_json", "result_text", "raise_midstream", "tool")
SHAPE = os.environ.get("AGENT_SHAPE", "raw_events")
if SHAPE not in SHAPES:
    raise SystemExit(f"AGENT_SHAPE must be one of {', '.join(SHAPES)}; got {SHAPE!r}")

app = BedrockAgentCoreApp()


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city.

    Args:
        city: The city.
    """
    return f"sunny and 21 degrees in {city}"


def make_agent() -> Agent:
    """A fresh agent per invocation (so each call's model call count starts at 1)."""
    tools = [get_weather] if SHAPE == "tool" else []
    return Agent(model=ScriptedModel(), tools=tools, callback_handler=None)


def prompt_of(payload: dict) -> str:
    return str(payload.get("prompt", ""))


if SHAPE in ("raw_events", "tool"):

    @app.entrypoint
    async def invoke(payload):
        async for event in make_agent().stream_async(prompt_of(payload)):
            yield event

elif SHAPE == "text":

    @app.entrypoint
    async def invoke(payload):
        async for event in make_agent().stream_async(prompt_of(payload)):
            if "data" in event:
                yield event["data"]

elif SHAPE == "raise_midstream":

    @app.entrypoint
    async def invoke(payload):
        sent = 0
        async for event in make_agent().stream_async(prompt_of(payload)):
            if "data" in event:
                yield event["data"]
                sent += 1
                if sent == 2:
                    raise RuntimeError("scripted failure after two chunks")

elif SHAPE == "result_json":

    @app.entrypoint
    def invoke(payload):
        result = make_agent()(prompt_of(payload))
        return {"result": result.message}

else:  # result_text

    @app.entrypoint
    def invoke(payload):
        return str(make_agent()(prompt_of(payload)))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("AGENT_PORT", "8080")))
