"""A real Bedrock AgentCore Runtime agent: `BedrockAgentCoreApp` serving a Strands `Agent`.

The model is `ScriptedModel` (no network). Each runtime session (the
`X-Amzn-Bedrock-AgentCore-Runtime-Session-Id` header) has its own agent, so conversations
carry over between invocations of a session, as on AgentCore. `AGENT_SHAPE` picks the entrypoint, in the shapes
AgentCore agents are commonly written:

| AGENT_SHAPE | entrypoint |
|---|---|
| `raw_events` | `async for event in agent.stream_async(prompt): yield event` |
| `text` | yields only the text of each `data` event |
| `result_json` | `return {"result": agent(prompt).message}` (one JSON body) |
| `result_text` | `return str(agent(prompt))` (a JSON string body) |
| `raise_midstream` | yields the text of the first two `data` events, then raises |
| `tool` | raw events of an agent with a `@tool` the model calls first |
| `request_headers` | returns the request headers the runtime passed to the agent code (`context.request_headers`), as JSON text; no model |

Run: `AGENT_SHAPE=text AGENT_PORT=8081 python app.py` (listens on 127.0.0.1:AGENT_PORT,
default 8080, as the AgentCore container contract says: `POST /invocations`, `GET /ping`).
"""

from __future__ import annotations

import json
import os
import sys

from bedrock_agentcore.runtime import BedrockAgentCoreApp
from strands import Agent, tool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scripted_model import ScriptedModel  # noqa: E402

SHAPES = ("raw_events", "text", "result_json", "result_text", "raise_midstream", "tool", "request_headers")
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


_agents: dict[str, Agent] = {}


def agent_for(context) -> Agent:
    """The session's agent: AgentCore keeps one instance per runtime session, so an agent kept
    in memory per session ID carries the conversation from one invocation to the next."""
    session = getattr(context, "session_id", None) or "no-session"
    if session not in _agents:
        tools = [get_weather] if SHAPE == "tool" else []
        _agents[session] = Agent(model=ScriptedModel(), tools=tools, callback_handler=None)
    return _agents[session]


def prompt_of(payload: dict) -> str:
    return str(payload.get("prompt", ""))


if SHAPE in ("raw_events", "tool"):

    @app.entrypoint
    async def invoke(payload, context):
        async for event in agent_for(context).stream_async(prompt_of(payload)):
            yield event

elif SHAPE == "text":

    @app.entrypoint
    async def invoke(payload, context):
        async for event in agent_for(context).stream_async(prompt_of(payload)):
            if "data" in event:
                yield event["data"]

elif SHAPE == "raise_midstream":

    @app.entrypoint
    async def invoke(payload, context):
        sent = 0
        async for event in agent_for(context).stream_async(prompt_of(payload)):
            if "data" in event:
                yield event["data"]
                sent += 1
                if sent == 2:
                    raise RuntimeError("scripted failure after two chunks")

elif SHAPE == "request_headers":

    @app.entrypoint
    def invoke(payload, context):
        headers = getattr(context, "request_headers", None) or {}
        return {"result": {"content": [{"text": json.dumps(headers, sort_keys=True)}]}}

elif SHAPE == "result_json":

    @app.entrypoint
    def invoke(payload, context):
        result = agent_for(context)(prompt_of(payload))
        return {"result": result.message}

else:  # result_text

    @app.entrypoint
    def invoke(payload, context):
        return str(agent_for(context)(prompt_of(payload)))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("AGENT_PORT", "8080")))
