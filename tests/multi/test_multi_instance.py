"""Two gateway instances sharing PostgreSQL and Redis enforce ONE rpm limit and ONE budget
for a key, and its spend is exactly the sum of the costs of the calls they accepted.
Run by scripts/test-multi-instance, which starts PostgreSQL and Redis on loopback."""
import os
import pathlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from conftest import MASTER_KEY, TEST_AK, TEST_SK, Proc, free_port, write_config  # noqa: E402

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
PG_URL = os.environ["PG_URL"]
REDIS_URL = os.environ["REDIS_URL_TEST"]


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    emu_port = free_port()
    emu = Proc(["emulator", "--port", str(emu_port)], f"http://127.0.0.1:{emu_port}/_emulator/health", log_name="multi-emulator")
    cfg = tmp / "config.yaml"
    write_config(cfg, f"http://127.0.0.1:{emu_port}", MASTER_KEY)
    cfg.write_text(cfg.read_text() + "  database_url: os.environ/PG_URL\n  redis_url: os.environ/REDIS_URL_TEST\n")
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY)
    procs, urls = [], []
    for name in ("a", "b"):
        port = free_port()
        procs.append(Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                          f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name=f"multi-gw-{name}"))
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for p in procs + [emu]:
        p.stop()
    assert not (tmp / "agentbridge.db").exists(), "with database_url set, no SQLite file is made"


def call(url, key, content="hi"):
    return requests.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": content}]})


def generate(url, **fields):
    r = requests.post(f"{url}/key/generate", json=fields, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def test_one_rpm_limit_and_exact_spend_across_two_instances(instances):
    a, b = instances
    k = generate(a, rpm_limit=30)
    s = time.time() % 60
    if s > 40:  # keep the burst inside one rate-limit window
        time.sleep(60 - s + 0.2)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: call((a, b)[i % 2], k["key"], f"burst {i}"), range(80)))
    accepted = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code != 200]
    # Tolerance: none. Redis INCR counts every request once, atomically, for both instances.
    assert len(accepted) == 30, [r.status_code for r in results]
    assert all(r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error" for r in refused)
    assert {r.url.split("/v1")[0] for r in accepted} == {a, b}, "both instances served some"
    expected = sum(float(r.headers["x-litellm-response-cost"]) for r in accepted)
    time.sleep(1.5)  # both instances flush their buffered spend every 0.5 s
    for url in (a, b):
        info = requests.get(f"{url}/key/info", params={"key": k["key"]}, headers=ADMIN).json()["info"]
        assert info["spend"] == pytest.approx(expected, rel=1e-9)
        logs = requests.get(f"{url}/spend/logs", params={"api_key": k["key"]}, headers=ADMIN).json()
        assert len(logs) == 30
        assert sum(l["spend"] for l in logs) == pytest.approx(expected, rel=1e-9)


def test_one_budget_across_two_instances(instances):
    a, b = instances
    k = generate(a, max_budget=0.000001)
    assert call(a, k["key"]).status_code == 200
    r = call(b, k["key"])
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"


def test_key_deleted_on_one_instance_is_refused_by_both(instances):
    a, b = instances
    k = generate(a)
    assert call(b, k["key"]).status_code == 200
    assert requests.post(f"{a}/key/delete", json={"keys": [k["key"]]}, headers=ADMIN).status_code == 200
    assert call(a, k["key"]).status_code == 401
    time.sleep(2.2)  # the other instance's key cache lives 2 s
    assert call(b, k["key"]).status_code == 401


def test_keys_with_and_without_optional_limits_interleave(instances):
    # Regression: on PostgreSQL a cached statement prepared with NULL limits rejected later
    # non-NULL ones ("incorrect binary data format in bind parameter").
    a, _ = instances
    for i in range(12):
        fields = {"max_budget": 1.5, "tpm_limit": 1000, "budget_duration": "1d"} if i % 2 else {}
        k = generate(a, **fields)
        r = requests.post(f"{a}/key/update", json={"key": k["key"], "rpm_limit": 100 + i} if i % 3 else {"key": k["key"]}, headers=ADMIN)
        assert r.status_code == 200, r.text
