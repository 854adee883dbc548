"""The gateway survives the loss of its own dependencies (docs/reliability.md).

Two gateway instances share PostgreSQL (started by scripts/test-multi-instance, which passes
the commands to stop and start it) and a Redis server this module starts itself on a free
loopback port, so that it can stop and restart both while virtual-key traffic flows.
Every client call has a timeout: a call that times out is a hang, and a hang is a failure.
"""
import json
import os
import pathlib
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from conftest import MASTER_KEY, TEST_AK, TEST_SK, Proc, free_port, write_config  # noqa: E402

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
PG_URL = os.environ["PG_URL"]
PG_START = os.environ["PG_START"]
PG_STOP = os.environ["PG_STOP"]
PSQL = os.environ["PSQL"]
CALL_TIMEOUT = 15  # seconds; longer than any bound the gateway puts on its dependencies


class Hang(Exception):
    """A call that got no answer within CALL_TIMEOUT."""


class Redis:
    """A redis-server of our own on a free loopback port, which keeps its data across a
    restart only when asked (`stop(save=True)`)."""

    def __init__(self, workdir: pathlib.Path, start=True):
        self.port = free_port()
        self.dir = workdir
        if start:
            self.start()

    def cli(self, *args, check=True):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        if check and r.returncode != 0:
            raise RuntimeError(r.stderr)
        return r.stdout.strip()

    def start(self):
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "yes",
                        "--logfile", str(self.dir / "redis.log")], check=True, timeout=10)
        for _ in range(200):
            if self.cli("ping", check=False) == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self, save=False):
        self.cli("shutdown", "save" if save else "nosave", check=False)
        for _ in range(200):
            if self.cli("ping", check=False) != "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis did not stop")


def pg(cmd: str):
    # PostgreSQL keeps inherited descriptors open: no pipes, or the call waits for it to exit.
    subprocess.run(shlex.split(cmd), check=True, timeout=60, cwd="/",
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sql(query: str) -> str:
    r = subprocess.run([*shlex.split(PSQL), "-At", "-c", query], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = Redis(tmp_path_factory.mktemp("redis"))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def gateways(tmp_path_factory, redis):
    tmp = tmp_path_factory.mktemp("outages")
    emu_port = free_port()
    emu = Proc(["emulator", "--port", str(emu_port)], f"http://127.0.0.1:{emu_port}/_emulator/health", log_name="outage-emulator")
    cfg = tmp / "config.yaml"
    write_config(cfg, f"http://127.0.0.1:{emu_port}", MASTER_KEY)
    cfg.write_text(cfg.read_text() + "  database_url: os.environ/PG_URL\n"
                   f"  redis_url: redis://127.0.0.1:{redis.port}\n")
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY,
               RUST_LOG="info,agentbridge_proxy=debug")
    procs, urls = [], []
    for name in ("a", "b"):
        port = free_port()
        procs.append(Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                          f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name=f"outage-gw-{name}"))
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for p in procs + [emu]:
        p.stop()


def call(url, key, content="hi"):
    try:
        return requests.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                             json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": content}]},
                             timeout=CALL_TIMEOUT)
    except requests.Timeout as e:
        raise Hang(f"{url}: no answer in {CALL_TIMEOUT} s") from e


def generate(url, **fields):
    r = requests.post(f"{url}/key/generate", json=fields, headers=ADMIN, timeout=CALL_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def readiness(url):
    return requests.get(f"{url}/health/readiness", timeout=CALL_TIMEOUT).json()


def wait_until(pred, what, seconds=20.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


def clear_error(r) -> bool:
    """An OpenAI error body that says whether to retry."""
    try:
        e = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(e.get("message")) and r.headers.get("x-should-retry") in ("true", "false")


def log_count(instance: str, text: str) -> int:
    """How many lines of gateway `instance`'s log (a or b) contain `text`."""
    log = pathlib.Path(__file__).resolve().parents[2] / "target" / f"outage-gw-{instance}.log"
    return sum(text in line for line in log.read_text(errors="replace").splitlines())


def wait_start_of_minute(room: float):
    s = time.time() % 60
    if s > 60 - room:
        time.sleep(60 - s + 0.2)


def test_virtual_key_traffic_survives_a_redis_restart(gateways, redis):
    a, b = gateways
    k = generate(a, rpm_limit=10_000)["key"]
    assert all(call(u, k).status_code == 200 for u in (a, b))
    warned = {g: log_count(g, "Redis is unreachable") for g in "ab"}
    recovered = {g: log_count(g, "Redis is reachable again") for g in "ab"}
    redis.stop()
    # Redis is gone: requests are still answered, counted per instance.
    for i in range(6):
        r = call((a, b)[i % 2], k, f"down {i}")
        assert r.status_code == 200, r.text
    for u in (a, b):
        wait_until(lambda: readiness(u)["redis"] == "unreachable", f"{u} reports Redis unreachable")
    redis.start()
    for u in (a, b):
        wait_until(lambda: readiness(u)["redis"] == "connected", f"{u} reports Redis connected again")
    # The bug this reproduces: after Redis came back, every virtual-key call hung.
    for i in range(6):
        r = call((a, b)[i % 2], k, f"back {i}")
        assert r.status_code == 200, r.text
    for g in "ab":
        assert log_count(g, "Redis is unreachable") == warned[g] + 1, "one warning per outage"
        assert log_count(g, "Redis is reachable again") == recovered[g] + 1, "one line when it returns"


def test_counts_and_spend_made_while_redis_is_down_are_added_when_it_returns(gateways, redis):
    a, b = gateways
    n = 20
    k = generate(a, rpm_limit=n)
    token = k["token"]
    wait_start_of_minute(room=30)
    assert call(a, k["key"], "before").status_code == 200  # seeds the shared spend counter
    redis.stop(save=True)  # Redis keeps its data: what was counted before the outage stays
    down = [call((a, b)[i % 2], k["key"], f"down {i}") for i in range(8)]
    assert [r.status_code for r in down] == [200] * 8, "per-instance windows admit them"
    redis.start()
    for u in (a, b):
        wait_until(lambda: readiness(u)["redis"] == "connected", f"{u} reports Redis connected again")
    # 9 requests are in this minute's window already (1 before, 8 during the outage).
    with ThreadPoolExecutor(8) as pool:
        burst = list(pool.map(lambda i: call((a, b)[i % 2], k["key"], f"burst {i}"), range(30)))
    accepted = sum(r.status_code == 200 for r in burst)
    assert n - 9 <= accepted <= n - 9 + 2, [r.status_code for r in burst]
    assert all(r.status_code == 429 for r in burst if r.status_code != 200)
    # The shared spend counter holds every charged call, each once.
    charged = [r for r in [*down, *burst] if r.status_code == 200]
    first = float(redis.cli("get", f"agentbridge:spend:{token}"))
    wait_until(lambda: abs(float(sql(f"SELECT spend FROM virtual_keys WHERE key_hash = '{token}'")) - first) < 1e-9,
               "the database's spend equals Redis's shared spend")
    logs = int(sql(f"SELECT COUNT(*) FROM spend_logs WHERE key_hash = '{token}'"))
    assert logs == 1 + len(charged)


def test_refusal_policy_answers_503_while_redis_is_down(tmp_path, gateways, redis):
    emu_port = free_port()
    emu = Proc(["emulator", "--port", str(emu_port)], f"http://127.0.0.1:{emu_port}/_emulator/health", log_name="outage-emulator-refuse")
    cfg = tmp_path / "config.yaml"
    write_config(cfg, f"http://127.0.0.1:{emu_port}", MASTER_KEY, extra="agentbridge:\n  redis_outage: refuse\n")
    cfg.write_text(cfg.read_text() + "  database_url: os.environ/PG_URL\n"
                   f"  redis_url: redis://127.0.0.1:{redis.port}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY)
    gw = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"], f"{url}/health/liveliness",
              env=env, log_name="outage-gw-refuse")
    try:
        limited = generate(url, rpm_limit=100)["key"]
        unlimited = generate(url)["key"]
        assert call(url, limited).status_code == 200
        redis.stop()
        r = call(url, limited)
        assert r.status_code == 503 and clear_error(r) and r.headers["x-should-retry"] == "true", r.text
        assert "redis" in r.json()["error"]["message"].lower()
        assert call(url, unlimited).status_code == 200, "a key without limits needs no shared counter"
        redis.start()
        wait_until(lambda: readiness(url)["redis"] == "connected", "Redis connected again")
        assert call(url, limited).status_code == 200
    finally:
        gw.stop()
        emu.stop()
        if redis.cli("ping", check=False) != "PONG":
            redis.start()


def test_a_gateway_starts_while_redis_is_down_and_shares_limits_once_it_is_up(tmp_path):
    late = Redis(tmp_path, start=False)
    emu_port = free_port()
    emu = Proc(["emulator", "--port", str(emu_port)], f"http://127.0.0.1:{emu_port}/_emulator/health", log_name="outage-emulator-late")
    cfg = tmp_path / "config.yaml"
    write_config(cfg, f"http://127.0.0.1:{emu_port}", MASTER_KEY)
    cfg.write_text(cfg.read_text() + "  database_url: os.environ/PG_URL\n"
                   f"  redis_url: redis://127.0.0.1:{late.port}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY)
    gw = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"], f"{url}/health/liveliness",
              env=env, log_name="outage-gw-late")
    try:
        assert readiness(url)["redis"] == "unreachable" and readiness(url)["status"] == "degraded"
        k = generate(url, rpm_limit=100)
        assert call(url, k["key"]).status_code == 200, "served with per-instance windows"
        late.start()
        wait_until(lambda: readiness(url)["redis"] == "connected", "connected once Redis is up")
        assert readiness(url)["status"] == "healthy"
        assert call(url, k["key"]).status_code == 200
        minute = int(time.time()) // 60
        counted = sum(int(late.cli("get", f"agentbridge:rpm:{k['token']}:{m}") or 0) for m in (minute - 1, minute))
        assert counted == 2, "the call made before Redis came up was handed to it"
    finally:
        gw.stop()
        emu.stop()
        late.stop()


def test_cached_keys_keep_working_while_postgres_is_down(gateways):
    a, b = gateways
    known = generate(a)["key"]
    unknown = generate(a)["key"]  # never used, so in no instance's cache
    before = [call(u, known, "before") for u in (a, b)]
    assert all(r.status_code == 200 for r in before)
    warned = {g: log_count(g, "the database is unreachable") for g in "ab"}
    pg(PG_STOP)
    try:
        time.sleep(2.5)  # longer than the key cache's freshness: the cached entry is stale now
        during = [call((a, b)[i % 2], known, f"during {i}") for i in range(10)]
        assert [r.status_code for r in during] == [200] * 10, [r.text for r in during]
        r = call(a, unknown)
        assert r.status_code == 503 and clear_error(r) and r.headers["x-should-retry"] == "true", r.text
        wait_until(lambda: readiness(a)["db"] == "unreachable", "the instance reports its database unreachable")
    finally:
        pg(PG_START)
    for u in (a, b):
        wait_until(lambda: readiness(u)["db"] == "connected", f"{u} reports its database connected again")
    assert call(b, unknown).status_code == 200
    for g in "ab":
        assert log_count(g, "the database is unreachable") == warned[g] + 1, "one warning per outage"
    # The calls made while the database was down are written once it is back.
    costs = sum(float(r.headers["x-litellm-response-cost"]) for r in [*before, *during])
    token = generate(a)  # any admin call works again
    assert token
    known_token = requests.get(f"{a}/key/info", params={"key": known}, headers=ADMIN, timeout=CALL_TIMEOUT).json()["key"]
    wait_until(lambda: abs(float(sql(f"SELECT spend FROM virtual_keys WHERE key_hash = '{known_token}'")) - costs) < 1e-9,
               "the database holds the spend of every call made while it was down")
    assert int(sql(f"SELECT COUNT(*) FROM spend_logs WHERE key_hash = '{known_token}'")) == 12


def test_load_through_a_redis_restart_then_a_postgres_restart(gateways, redis):
    """A few thousand virtual-key calls against two instances while Redis is stopped and
    restarted, then PostgreSQL: every call is answered (or gets a clear error), none hangs,
    the database's spend is the sum of the answered calls' costs, and once Redis is back the
    shared rpm limit holds again."""
    a, b = gateways
    keys = [generate(a) for _ in range(6)]
    expected = {k["token"]: 0.0 for k in keys}
    calls = 0
    for i, k in enumerate(keys):  # cached by both instances before the database goes away
        for url in (a, b):
            r = call(url, k["key"], "warm-up")
            assert r.status_code == 200
            expected[k["token"]] += float(r.headers["x-litellm-response-cost"])
            calls += 1
    total = 3000
    results, hangs, lock = [], [], threading.Lock()
    issued = iter(range(total))

    def worker(w):
        session = requests.Session()
        while True:
            with lock:
                i = next(issued, None)
            if i is None:
                return
            k = keys[i % len(keys)]
            url = (a, b)[i % 2]
            try:
                r = session.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {k['key']}"},
                                 json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": f"load {i}"}]},
                                 timeout=CALL_TIMEOUT)
                with lock:
                    results.append((k["token"], r.status_code, r.headers.get("x-litellm-response-cost"), clear_error(r)))
            except requests.Timeout:
                with lock:
                    hangs.append(f"{url}: no answer in {CALL_TIMEOUT} s")
            except requests.RequestException as e:
                with lock:
                    hangs.append(f"{url}: connection failure: {e}")

    def after(n):  # waits until n calls have been answered (or have failed)
        while len(results) + len(hangs) < n:
            time.sleep(0.05)

    started = time.time()
    with ThreadPoolExecutor(16) as pool:
        workers = [pool.submit(worker, w) for w in range(16)]
        # Each dependency is away for a share of the load, and traffic flows on both sides
        # of every stop and start.
        after(400)
        redis.stop()
        after(1000)
        redis.start()
        after(1600)
        pg(PG_STOP)
        after(2200)
        pg(PG_START)
        for w in workers:
            w.result()
    elapsed = time.time() - started
    assert not hangs, hangs[:5]
    assert len(results) == total, f"{len(results)} of {total} calls answered in {elapsed:.0f} s"
    answered = [x for x in results if x[1] == 200]
    errors = [x for x in results if x[1] != 200]
    (pathlib.Path(__file__).resolve().parents[2] / "target" / "outage-load.json").write_text(json.dumps({
        "calls": len(results), "answered": len(answered), "errors": sorted(x[1] for x in errors),
        "hangs": len(hangs), "seconds": round(elapsed, 1)}))
    assert all(x[3] for x in errors), "every failure is a clear OpenAI error"
    for token, _, cost, _ in answered:
        expected[token] += float(cost)
    calls += len(answered)
    tokens = ",".join(f"'{k['token']}'" for k in keys)
    wait_until(lambda: int(sql(f"SELECT COUNT(*) FROM spend_logs WHERE key_hash IN ({tokens})")) >= calls,
               "one spend log per answered call", seconds=30)
    assert int(sql(f"SELECT COUNT(*) FROM spend_logs WHERE key_hash IN ({tokens})")) == calls
    rows = sql(f"SELECT key_hash, spend FROM virtual_keys WHERE key_hash IN ({tokens})")
    got = {h: float(s) for h, s in (line.split("|") for line in rows.splitlines())}
    for t, want in expected.items():
        assert got[t] == pytest.approx(want, rel=1e-9, abs=1e-12), "spend is the sum of the answered calls' costs"
    # The rpm limit is shared again: two instances together admit N (+2), not 2N.
    n = 15
    k = generate(a, rpm_limit=n)["key"]
    wait_start_of_minute(room=20)
    with ThreadPoolExecutor(8) as pool:
        burst = list(pool.map(lambda i: call((a, b)[i % 2], k, f"rpm {i}"), range(40)))
    accepted = sum(r.status_code == 200 for r in burst)
    assert n <= accepted <= n + 2, [r.status_code for r in burst]
