"""Start real AgentCore agents and an emulator in front of them, for any test suite.

`start_agent(shape)` runs `tests/agentcore_agents/app.py` (BedrockAgentCoreApp + a Strands
agent with a scripted model) on a free loopback port; `start_emulator(...)` runs
`agentbridge emulator` with the AgentCore flags; the `agentcore_stack` fixture does both and
gives the emulator URL and the ARN of a runtime forwarded to the agent:

    from agentcore_fixtures import agentcore_stack  # noqa: F401  (registers the fixture)

    def test_something(agentcore_stack):
        stack = agentcore_stack("text")          # one of app.SHAPES
        stack.emulator_url, stack.runtime_arn    # call InvokeAgentRuntime here

Runtimes of account `ACCOUNT_ID` that no rule forwards stay scripted (see the emulator's
`agentcore::script` docs), and runtimes named `oauth...` take `BEARER_TOKEN`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys

import pytest
import requests

from conftest import BIN, ROOT, free_port, wait_http

AGENTS = ROOT / "tests" / "agentcore_agents"
ACCOUNT_ID = "123456789012"
REGION = "us-west-2"
BEARER_TOKEN = "agentcore-test-bearer-token-0123456789"
SHAPES = ("raw_events", "text", "result_json", "result_text", "raise_midstream", "tool")
# Shapes for single gateway tests, without recorded goldens.
TEST_SHAPES = ("request_headers",)


def runtime_arn(name: str, suffix: str = "AbCdE12345", region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """The ARN of runtime `name-suffix` (`name` must match `[a-zA-Z][a-zA-Z0-9_]{0,47}`)."""
    return f"arn:aws:bedrock-agentcore:{region}:{account}:runtime/{name}-{suffix}"


def runtime_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


class _Proc:
    def __init__(self, args: list[str], health: str, env: dict, log_name: str):
        self.log_path = ROOT / "target" / f"{log_name}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self.log = open(self.log_path, "w")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(health, self.p, timeout=60.0)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
        self.log.close()


@dataclasses.dataclass
class Agent:
    """A running agent app."""

    shape: str
    url: str
    proc: _Proc

    def stop(self) -> None:
        self.proc.stop()


def start_agent(shape: str, python: str = sys.executable) -> Agent:
    """Starts `app.py` with `AGENT_SHAPE=shape` on a free 127.0.0.1 port; waits for `/ping`."""
    if shape not in SHAPES + TEST_SHAPES:
        raise ValueError(f"shape must be one of {SHAPES + TEST_SHAPES}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AGENT_SHAPE=shape, AGENT_PORT=str(port), PYTHONUNBUFFERED="1")
    env.pop("DOCKER_CONTAINER", None)
    proc = _Proc([python, str(AGENTS / "app.py")], f"{url}/ping", env, f"agentcore-agent-{shape}-{port}")
    return Agent(shape, url, proc)


@dataclasses.dataclass
class Emulator:
    """A running `agentbridge emulator`."""

    url: str
    proc: _Proc

    def invocations(self) -> list[dict]:
        """The InvokeAgentRuntime calls received (see the emulator's `agentcore::observe`)."""
        return requests.get(f"{self.url}/_emulator/agentcore/invocations", timeout=5).json()

    def clear(self) -> None:
        requests.delete(f"{self.url}/_emulator/agentcore/invocations", timeout=5)

    def stop(self) -> None:
        self.proc.stop()


def start_emulator(forward: list[str] = (), bearer: list[str] = (BEARER_TOKEN,), extra: list[str] = ()) -> Emulator:
    """Starts the emulator on a free port. `forward`: `URL` or `RUNTIME_ID=URL` rules."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [BIN, "emulator", "--port", str(port)]
    for f in forward:
        args += ["--agentcore-forward", f]
    for b in bearer:
        args += ["--agentcore-bearer", b]
    args += list(extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTBRIDGE_EMULATOR_")}
    return Emulator(url, _Proc(args, f"{url}/_emulator/health", env, f"agentcore-emulator-{port}"))


@dataclasses.dataclass
class Stack:
    """An agent, and an emulator forwarding `runtime_arn` (and `oauth_runtime_arn`) to it."""

    agent: Agent
    emulator: Emulator
    runtime_arn: str
    oauth_runtime_arn: str

    @property
    def emulator_url(self) -> str:
        return self.emulator.url


@pytest.fixture()
def agentcore_stack():
    """A factory: `agentcore_stack(shape)` starts an agent app and an emulator forwarding to
    it; everything started is stopped at the end of the test."""
    started: list = []

    def make(shape: str) -> Stack:
        agent = start_agent(shape)
        started.append(agent)
        arn = runtime_arn(f"strands_{shape}")
        oauth_arn = runtime_arn(f"oauth_{shape}")
        emulator = start_emulator(
            forward=[f"{runtime_id(arn)}={agent.url}", f"{runtime_id(oauth_arn)}={agent.url}"]
        )
        started.append(emulator)
        return Stack(agent, emulator, arn, oauth_arn)

    yield make
    for p in reversed(started):
        p.stop()
