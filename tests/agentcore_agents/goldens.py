"""Record the real agents' wire output, through the emulator's forward mode, as golden files.

For each shape of `app.py`: start the agent and an emulator forwarding to it, call
InvokeAgentRuntime with boto3 (SigV4) and write `tests/fixtures/agentcore/<shape>.body` (the
body bytes exactly as they arrived) and `<shape>.meta.json` (status, content type, request).
`signature()` leaves out what changes from run to run (UUIDs, object addresses, timings,
whether Strands adds `timeToFirstByteMs`), so a test can check that the pinned agents still
produce the recorded shapes.

Run: `scripts/record-agentcore-goldens` (builds the binary, then runs this with the venv).
"""

from __future__ import annotations

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from agentcore_fixtures import REGION, SHAPES, runtime_arn, runtime_id, start_agent, start_emulator  # noqa: E402
from conftest import TEST_AK, TEST_SK  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "agentcore"
PROMPT = "Hi there"
SESSION = "golden-session-0123456789-0123456789-0123"

def events(body: bytes) -> list:
    """The decoded `data:` events of an SSE body (JSON values; repr strings stay strings)."""
    out = []
    for block in body.decode("utf-8").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def signature(content_type: str, body: bytes) -> list[str]:
    """What a body is made of, without what changes from run to run (UUIDs, timings, object
    addresses): per SSE event its kind (`event.contentBlockDelta`, `message`, `repr:data`,
    `str:<text>`, ...); for JSON, the key paths down to the answer text."""
    if content_type.startswith("text/event-stream"):
        sig = []
        for e in events(body):
            if isinstance(e, dict):
                top = next(iter(e))
                sig.append(f"{top}.{next(iter(e[top]))}" if top == "event" else top)
            elif isinstance(e, str) and e.startswith("{'"):
                sig.append("repr:" + e[2 : e.index("'", 2)])
            else:
                sig.append(f"str:{e}")
        return sig
    v = json.loads(body)
    if isinstance(v, str):
        return [f"str:{v}"]
    return sorted(_paths(v))


def _paths(v, prefix: str = "") -> list[str]:
    if isinstance(v, dict):
        return [p for k, x in v.items() if k not in ("tracking_id", "metrics") for p in _paths(x, f"{prefix}.{k}")]
    if isinstance(v, list):
        return [p for i, x in enumerate(v) for p in _paths(x, f"{prefix}[{i}]")]
    if isinstance(v, str):
        return [f"{prefix}={v}"]
    return [prefix]


def record(shape: str) -> tuple[dict, bytes]:
    """Runs `shape` behind the emulator; returns (meta, body bytes)."""
    agent = start_agent(shape)
    arn = runtime_arn(f"strands_{shape}")
    emulator = start_emulator(forward=[f"{runtime_id(arn)}={agent.url}"])
    try:
        client = boto3.client(
            "bedrock-agentcore",
            endpoint_url=emulator.url,
            region_name=REGION,
            aws_access_key_id=TEST_AK,
            aws_secret_access_key=TEST_SK,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
        )
        payload = {"prompt": PROMPT}
        resp = client.invoke_agent_runtime(
            agentRuntimeArn=arn, runtimeSessionId=SESSION, payload=json.dumps(payload).encode()
        )
        body = resp["response"].read()
        meta = {
            "shape": shape,
            "status": resp["statusCode"],
            "content_type": resp["contentType"],
            "request_payload": payload,
            "recorded_through": "agentbridge emulator forward mode (body relayed unchanged)",
            "agent": "tests/agentcore_agents/app.py (BedrockAgentCoreApp + strands Agent + ScriptedModel)",
            "versions": _versions(),
        }
        return meta, body
    finally:
        emulator.stop()
        agent.stop()


def _versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("bedrock-agentcore", "strands-agents", "starlette", "uvicorn")}


def main(shapes: list[str]) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for shape in shapes or SHAPES:
        meta, body = record(shape)
        (FIXTURES / f"{shape}.body").write_bytes(body)
        (FIXTURES / f"{shape}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"{shape}: {meta['status']} {meta['content_type']} {len(body)} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
