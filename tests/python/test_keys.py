"""Virtual keys on the embedded SQLite store: generate, limit, charge, revoke."""
import os
import signal
import time

import openai
import pytest
import requests
from openai import OpenAI

from conftest import MASTER_KEY, TEST_AK, TEST_SK, Proc, free_port, write_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def generate(url, **fields):
    r = requests.post(f"{url}/key/generate", json=fields, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def call(url, key, model="bedrock-agent-1", content="hi", stream=False):
    return requests.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, stream=stream,
                         json={"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]})


def same_minute(need=10):
    """Waits so that the next `need` seconds fall in one rate-limit window."""
    s = time.time() % 60
    if s > 60 - need:
        time.sleep(60 - s + 0.2)


def test_generated_key_works_with_the_openai_sdk_and_is_charged(gateway_url):
    k = generate(gateway_url, models=["bedrock-agent-1"], key_alias="team-a", metadata={"team": "a"})
    assert k["key"].startswith("sk-") and len(k["key"]) > 40
    assert k["token"] != k["key"] and k["key_alias"] == "team-a"
    client = OpenAI(base_url=gateway_url, api_key=k["key"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "x"}])
    cost = float(raw.headers["x-litellm-response-cost"])
    assert float(raw.headers["x-litellm-key-spend"]) == pytest.approx(cost)
    stream = list(client.chat.completions.create(model="bedrock-agent-1", stream=True, messages=[{"role": "user", "content": "y"}]))
    assert stream[-1].choices[0].finish_reason == "stop"
    time.sleep(0.3)
    info = requests.get(f"{gateway_url}/key/info", params={"key": k["key"]}, headers=ADMIN).json()["info"]
    assert info["spend"] > cost, "the streamed call was charged too"
    logs = requests.get(f"{gateway_url}/spend/logs", params={"api_key": k["key"]}, headers=ADMIN).json()
    assert len(logs) == 2
    assert sum(l["spend"] for l in logs) == pytest.approx(info["spend"])
    assert {l["model"] for l in logs} == {"bedrock-agent-1"}
    summary = requests.get(f"{gateway_url}/spend/summary", headers=ADMIN).json()
    assert summary["by_key"][k["token"]]["calls"] == 2
    assert "bedrock-agent-1" in summary["by_model"]


def test_model_not_allowed_is_403(gateway_url):
    k = generate(gateway_url, models=["bedrock-agent-1"])
    r = call(gateway_url, k["key"], model="bedrock-agent-2")
    assert r.status_code == 403
    assert "bedrock-agent-2" in r.json()["error"]["message"] and r.json()["error"]["type"] == "permission_error"


def test_rpm_limit_is_429_with_retry_after(gateway_url):
    same_minute()
    k = generate(gateway_url, rpm_limit=3)
    assert [call(gateway_url, k["key"]).status_code for _ in range(3)] == [200] * 3
    r = call(gateway_url, k["key"])
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-should-retry"] == "true"


def test_tpm_limit_is_429(gateway_url):
    k = generate(gateway_url, tpm_limit=100)
    assert call(gateway_url, k["key"]).status_code == 200
    r = call(gateway_url, k["key"])
    assert r.status_code == 429 and "tpm" in r.json()["error"]["message"]


def test_budget_exhausted_is_429_that_says_do_not_retry(gateway_url):
    k = generate(gateway_url, max_budget=0.000001, budget_duration="30d")
    assert call(gateway_url, k["key"]).status_code == 200
    r = call(gateway_url, k["key"])
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "budget_exceeded" and "budget" in r.json()["error"]["message"]
    assert r.headers["x-should-retry"] == "false"
    assert int(r.headers["retry-after"]) > 86400


def test_deleted_key_is_refused_at_once(gateway_url):
    k = generate(gateway_url)
    assert call(gateway_url, k["key"]).status_code == 200
    r = requests.post(f"{gateway_url}/key/delete", json={"keys": [k["key"]]}, headers=ADMIN)
    assert r.json() == {"deleted_keys": [k["key"]]}
    r = call(gateway_url, k["key"])
    assert r.status_code == 401 and "deleted" in r.json()["error"]["message"]
    assert k["token"] not in requests.get(f"{gateway_url}/key/list", headers=ADMIN).json()["keys"]


def test_expired_key_is_401(gateway_url):
    k = generate(gateway_url, duration="1s")
    time.sleep(1.5)
    r = call(gateway_url, k["key"])
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_update_changes_limits(gateway_url):
    same_minute()
    k = generate(gateway_url, rpm_limit=1)
    assert call(gateway_url, k["key"]).status_code == 200
    assert call(gateway_url, k["key"]).status_code == 429
    r = requests.post(f"{gateway_url}/key/update", json={"key": k["key"], "rpm_limit": 100}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["rpm_limit"] == 100
    assert call(gateway_url, k["key"]).status_code == 200


def test_unknown_key_and_non_admin_calls(gateway_url):
    assert call(gateway_url, "sk-not-a-real-key").status_code == 401
    k = generate(gateway_url)
    r = requests.post(f"{gateway_url}/key/generate", json={}, headers={"Authorization": f"Bearer {k['key']}"})
    assert r.status_code == 403
    r = requests.post(f"{gateway_url}/key/generate", json={"max_budget": "lots"}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_budget"
    r = requests.post(f"{gateway_url}/key/generate", json={"rpm": 3}, headers=ADMIN)
    assert r.status_code == 400


def test_no_spend_is_lost_on_sigterm(emulator_url, tmp_path):
    cfg = tmp_path / "config.yaml"
    write_config(cfg, emulator_url, MASTER_KEY)
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY)

    def start():
        port = free_port()
        p = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                 f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name="pytest-gw-keys")
        return p, f"http://127.0.0.1:{port}"

    p, url = start()
    k = generate(url)
    costs = [float(call(url, k["key"], content=f"q{i}").headers["x-litellm-response-cost"]) for i in range(20)]
    p.p.send_signal(signal.SIGTERM)
    assert p.p.wait(timeout=15) == 0
    p.log.close()
    assert (tmp_path / "agentbridge.db").exists(), "the SQLite file sits next to the config"
    p2, url2 = start()
    try:
        info = requests.get(f"{url2}/key/info", params={"key": k["key"]}, headers=ADMIN).json()["info"]
        assert info["spend"] == pytest.approx(sum(costs), rel=1e-9)
    finally:
        p2.stop()
