"""The router across gateway instances: sessions stick to their deployment on every instance,
a throttled deployment falls back, cools down (for every instance, through Redis) and comes
back, and nothing is retried once an answer has started. Run by scripts/test-router, which
starts PostgreSQL and Redis on loopback.

Each deployment is a distinct agent id; the emulator's answer names the agent, so the answer
itself proves where a call went, beside the x-agentbridge-deployment header."""
import hashlib
import json
import math
import os
import pathlib
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from conftest import MASTER_KEY, TEST_AK, TEST_SK, Proc, free_port  # noqa: E402

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
PG_URL = os.environ["PG_URL"]
REDIS_URL = os.environ["REDIS_URL_TEST"]
STICKY = {"sticky/0": "STICKYA", "sticky/1": "STICKYB", "sticky/2": "STICKYC"}
COOLDOWN = 8


def deployment(model, agent, base, extra=""):
    return f"""  - model_name: {model}
    litellm_params:
      model: bedrock/agent/{agent}/ALIAS1
      aws_access_key_id: os.environ/EMU_AK
      aws_secret_access_key: os.environ/EMU_SK
      aws_region_name: us-west-2
      api_base: {base}
      num_retries: 0
{extra}"""


def config(main, flaky, failover=False):
    text = "model_list:\n"
    for agent in STICKY.values():
        text += deployment("sticky", agent, main)
    text += deployment("flaky", "FLAKYF", flaky, "    model_info:\n      id: flaky-f\n")
    text += deployment("flaky", "FLAKYE", main, "    model_info:\n      id: flaky-e\n")
    text += deployment("streamy", "STREAMA", main) + deployment("streamy", "STREAMB", main)
    text += f"""router_settings:
  routing_strategy: simple-shuffle
  num_retries: 2
  allowed_fails: 1
  cooldown_time: {COOLDOWN}
general_settings:
  master_key: os.environ/TEST_MASTER_KEY
  database_url: os.environ/PG_URL
  redis_url: os.environ/REDIS_URL_TEST
"""
    if failover:
        text += "agentbridge:\n  session_failover: true\n"
    return text


def home(session, ids):
    """The deployment holding `session`: weighted rendezvous hashing as docs/routing.md
    specifies it, computed independently of the gateway."""
    def score(dep):
        h = hashlib.sha256(dep.encode() + b"\0" + session.encode()).digest()
        u = ((int.from_bytes(h[:8], "big") >> 11) + 0.5) / float(1 << 53)
        return 1.0 / -math.log(u)
    return max(ids, key=score)


class Emulator:
    def __init__(self, name, port=None, faults=""):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["emulator", "--port", str(self.port)] + (["--faults", faults] if faults else [])
        self.proc = Proc(args, f"{self.url}/_emulator/health", log_name=f"router-{name}")

    def calls(self):
        return requests.get(f"{self.url}/_emulator/stats", timeout=5).json()["requests"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("router")
    main = Emulator("emulator-main")
    flaky = Emulator("emulator-flaky", faults="throttle=100")
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY, RUST_LOG="info")
    procs, urls = [], {}
    for name, failover in (("a", False), ("b", False), ("c", True)):
        cfg = tmp / f"config-{name}.yaml"
        cfg.write_text(config(main.url, flaky.url, failover))
        port = free_port()
        procs.append(Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                          f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name=f"router-gw-{name}"))
        urls[name] = f"http://127.0.0.1:{port}"
    w = {"main": main, "flaky": flaky, **urls}
    yield w
    for p in procs + [main.proc, w["flaky"].proc]:
        p.stop()


def chat(url, model, content, stream=False, **fields):
    return requests.post(f"{url}/v1/chat/completions", headers=AUTH, stream=stream, timeout=30, json={
        "model": model, "stream": stream, "messages": [{"role": "user", "content": content}], **fields})


def agent_of(r):
    m = re.search(r"Emulated agent (\w+) \(alias", r.json()["choices"][0]["message"]["content"])
    return m and m.group(1)


def test_pinned_sessions_stick_across_two_instances(world):
    a, b = world["a"], world["b"]
    sessions = [f"pinned-{i}-{'x' * (i % 7)}" for i in range(50)]

    def one(n):
        s = sessions[n % len(sessions)]
        r = chat((a, b)[n % 2], "sticky", f"turn {n}", session_id=s)
        assert r.status_code == 200, r.text
        return s, r.headers["x-agentbridge-deployment"], agent_of(r)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(1000)))
    misrouted = [(s, d, ag) for s, d, ag in results
                 if d != home(s, list(STICKY)) or ag != STICKY[d]]
    assert misrouted == [], misrouted[:5]
    assert len({d for _, d, _ in results}) == 3, "the sessions spread over all three deployments"


def test_fresh_sessions_are_balanced_and_their_next_turns_follow(world):
    a, b = world["a"], world["b"]
    firsts = [chat(a, "sticky", f"hello {i}") for i in range(30)]
    assert all(r.status_code == 200 for r in firsts)
    used = {r.headers["x-agentbridge-deployment"] for r in firsts}
    assert used == set(STICKY), used
    for r in firsts:
        s = r.headers["x-agentbridge-session-id"]
        again = chat(b, "sticky", "and again", session_id=s)
        assert again.headers["x-agentbridge-deployment"] == r.headers["x-agentbridge-deployment"]
        assert agent_of(again) == agent_of(r)
        assert "x-agentbridge-session-new" not in again.headers


def test_a_tool_result_goes_back_to_the_agent_that_asked(world):
    a, b = world["a"], world["b"]
    for i in range(6):
        q = {"role": "user", "content": f"Weather {i}? emulate:return_control"}
        r = requests.post(f"{a}/v1/chat/completions", headers=AUTH, json={"model": "sticky", "messages": [q]})
        msg = r.json()["choices"][0]["message"]
        call = msg["tool_calls"][0]
        r2 = requests.post(f"{b}/v1/chat/completions", headers=AUTH, json={"model": "sticky", "messages": [
            q, msg, {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]})
        assert r2.status_code == 200, r2.text
        assert r2.headers["x-agentbridge-deployment"] == r.headers["x-agentbridge-deployment"]
        assert "sunny" in r2.json()["choices"][0]["message"]["content"]


def test_throttled_deployment_falls_back_cools_down_everywhere_and_comes_back(world):
    a, b, c, flaky = world["a"], world["b"], world["c"], world["flaky"]
    # Fresh calls on instance a: those routed to the throttled deployment are answered by the
    # other one; its second throttle (allowed_fails: 1) starts the cooldown.
    for i in range(60):
        r = chat(a, "flaky", f"q{i}")
        assert r.status_code == 200, r.text
        assert r.headers["x-agentbridge-deployment"] == "flaky-e" and agent_of(r) == "FLAKYE"
        if flaky.calls() >= 2:
            break
    assert flaky.calls() == 2
    health = requests.get(f"{a}/health", headers=AUTH).json()
    cooling = {d["model_id"]: d for d in health["unhealthy_endpoints"]}
    assert cooling["flaky-f"]["state"] == "cooling_down"
    assert cooling["flaky-f"]["last_error"]["code"] == "ThrottlingException"
    assert requests.get(f"{a}/health").status_code == 401, "/health needs a key"

    # Instance b never saw a failure; through Redis it leaves the deployment alone too.
    time.sleep(1)
    assert any(d["model_id"] == "flaky-f" for d in requests.get(f"{b}/health", headers=AUTH).json()["unhealthy_endpoints"])
    for i in range(20):
        r = chat(b, "flaky", f"b{i}")
        assert r.status_code == 200 and r.headers["x-agentbridge-deployment"] == "flaky-e"
    assert flaky.calls() == 2, "no instance called the cooling deployment"

    # A pinned session held by the throttled deployment does not move (no session_failover):
    # it gets the deployment's error. Instance c allows failover: answered elsewhere, marked new.
    s = next(f"held-{i}" for i in range(1000) if home(f"held-{i}", ["flaky-f", "flaky-e"]) == "flaky-f")
    r = chat(a, "flaky", "pinned", session_id=s)
    assert r.status_code == 429 and r.json()["error"]["code"] == "ThrottlingException"
    r = chat(c, "flaky", "pinned", session_id=s)
    assert r.status_code == 200 and r.headers["x-agentbridge-deployment"] == "flaky-e"
    assert r.headers["x-agentbridge-session-new"] == "true"
    assert r.headers["x-agentbridge-session-id"] == s

    # The deployment recovers; after the cooldown it takes fresh sessions again.
    flaky.proc.stop()
    world["flaky"] = Emulator("emulator-flaky-2", port=flaky.port)
    deadline = time.time() + COOLDOWN + 10
    while time.time() < deadline:
        h = requests.get(f"{a}/health", headers=AUTH).json()
        if all(d["model_id"] != "flaky-f" for d in h["unhealthy_endpoints"]):
            break
        time.sleep(0.25)
    back = [chat(a, "flaky", f"back {i}") for i in range(30)]
    assert all(r.status_code == 200 for r in back)
    assert "flaky-f" in {r.headers["x-agentbridge-deployment"] for r in back}
    assert "FLAKYF" in {agent_of(r) for r in back}


def test_an_error_before_the_stream_moves_on_but_never_once_the_answer_started(world):
    a, main = world["a"], world["main"]
    # Before the stream: both deployments are tried (the agent cannot have acted).
    n = main.calls()
    r = chat(a, "streamy", "emulate:error=InternalServerException")
    assert r.status_code == 500
    assert main.calls() - n == 2

    # After the first chunk: reported in-band, the other deployment never called.
    n = main.calls()
    r = chat(a, "streamy", "tell me emulate:exception=throttlingException", stream=True)
    assert r.status_code == 200
    events = [l[6:] for l in r.iter_lines(decode_unicode=True) if l.startswith("data: ")]
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "ThrottlingException"
    assert any(json.loads(e).get("choices") for e in events[:-1]), "output had started"
    assert main.calls() - n == 1

    n = main.calls()
    r = chat(a, "streamy", "tell me emulate:exception=throttlingException")
    assert r.status_code == 429
    assert main.calls() - n == 1
