"""Prometheus metrics under LiteLLM's names, scraped by a real Prometheus server, and JSON logs.

The gateway runs with LiteLLM's `callbacks: ["prometheus"]`, `json_logs: true` and
`require_auth_for_metrics_endpoint: true`; Debian's `prometheus` scrapes it every second
on loopback with the master key. Clients call two models with three virtual keys (streamed
and not); Prometheus's HTTP query API must then hold, per key and model, the request
count, the spend and the token totals the clients received.
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from conftest import MASTER_KEY, ROOT, TEST_AK, TEST_SK, Proc, emulator_url, free_port, write_config  # noqa: E402,F401

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
MODELS = ["bedrock-agent-1", "bedrock-agent-2"]
LITELLM_MODEL = {"bedrock-agent-1": "bedrock/agent/L1RT58GYRW/MFPSBCXYTW", "bedrock-agent-2": "bedrock/agent/AGENT456/ALIAS789"}
OBSERVE = """litellm_settings:
  callbacks: ["prometheus"]
  json_logs: true
"""


@pytest.fixture(scope="module")
def gateway(emulator_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("obs")
    cfg = d / "config.yaml"
    write_config(cfg, emulator_url, MASTER_KEY, extra=OBSERVE)
    cfg.write_text(cfg.read_text() + "  require_auth_for_metrics_endpoint: true\n")
    port = free_port()
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY, RUST_LOG="info")
    proc = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name="pytest-gw-observe")
    yield f"http://127.0.0.1:{port}", port
    proc.stop()


@pytest.fixture(scope="module")
def prometheus(gateway, tmp_path_factory):
    url, gw_port = gateway
    d = tmp_path_factory.mktemp("prom")
    (d / "prometheus.yml").write_text(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: agentbridge
    metrics_path: /metrics/
    authorization:
      credentials: {MASTER_KEY}
    static_configs:
      - targets: ["127.0.0.1:{gw_port}"]
""")
    port = free_port()
    log = open(ROOT / "target" / "pytest-prometheus.log", "w")
    p = subprocess.Popen([PROMETHEUS, f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'data'}",
                          f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if requests.get(f"{base}/-/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    yield base
    p.terminate()
    p.wait(timeout=10)
    log.close()


def generate(url, alias):
    r = requests.post(f"{url}/key/generate", json={"key_alias": alias, "max_budget": 100.0}, headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def call(url, key, model, content, stream):
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    r = requests.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, stream=stream, timeout=30)
    assert r.status_code == 200, r.text
    if not stream:
        u = r.json()["usage"]
        return u["prompt_tokens"], u["completion_tokens"], float(r.headers["x-litellm-response-cost"])
    usage = None
    for line in r.iter_lines(decode_unicode=True):
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]
    assert usage, "the stream reported its usage"
    return usage["prompt_tokens"], usage["completion_tokens"], None


def query(prom, q):
    r = requests.get(f"{prom}/api/v1/query", params={"query": q}, timeout=5)
    assert r.status_code == 200, r.text
    return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in r.json()["data"]["result"]}


def by(prom, metric, *labels):
    out = query(prom, f"sum by ({','.join(labels)}) ({metric})")
    return {tuple(dict(k)[label] for label in labels): val for k, val in out.items()}


def test_metrics_endpoint_needs_a_key_when_configured(gateway):
    url, _ = gateway
    assert requests.get(f"{url}/metrics", timeout=5).status_code == 401
    assert requests.get(f"{url}/metrics", headers={"Authorization": "Bearer sk-wrong"}, timeout=5).status_code == 401
    call(url, MASTER_KEY, "bedrock-agent-1", "hello", False)
    r = requests.get(f"{url}/metrics", headers=ADMIN, timeout=5)
    assert r.status_code == 200
    assert "# TYPE litellm_proxy_total_requests_metric counter" in r.text
    assert "# TYPE litellm_request_total_latency_metric histogram" in r.text
    assert 'litellm_proxy_total_requests_metric_total{end_user="None",hashed_api_key="None",api_key_alias="None",requested_model="bedrock-agent-1"' in r.text


def test_prometheus_sees_what_the_clients_received(gateway, prometheus):
    url, _ = gateway
    keys = {alias: generate(url, alias) for alias in ("team-a", "team-b", "streamer")}
    want = {}  # (hashed key, litellm model) -> [requests, input, output, cost]
    n = 0
    for alias, key in keys.items():
        for model in MODELS:
            for i in range(3 if alias != "team-b" else 2):
                stream = alias == "streamer"
                it, ot, cost = call(url, key, model, f"question {n} about {model}", stream)
                n += 1
                w = want.setdefault((hashlib.sha256(key.encode()).hexdigest(), LITELLM_MODEL[model]), [0, 0, 0, 0.0])
                w[0] += 1
                w[1] += it
                w[2] += ot
                if cost is not None:
                    w[3] += cost
    # The streamed calls' cost, as the key store recorded it (a stream has no cost header).
    streamer = hashlib.sha256(keys["streamer"].encode()).hexdigest()
    logs = requests.get(f"{url}/spend/logs", params={"api_key": streamer}, headers=ADMIN, timeout=10).json()
    for model in MODELS:
        want[(streamer, LITELLM_MODEL[model])][3] = sum(l["spend"] for l in logs if l["model"] == model)
    assert all(w[3] > 0 for w in want.values()), want

    # A refused request is counted as a failure, with LiteLLM's labels.
    r = requests.post(f"{url}/v1/chat/completions", json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
                      headers={"Authorization": f"Bearer {keys['team-a']}"}, timeout=10)
    assert r.status_code == 404

    deadline = time.time() + 30
    while True:
        total = by(prometheus, "litellm_deployment_total_requests_total", "hashed_api_key", "litellm_model_name")
        if sum(total.values()) >= n or time.time() > deadline:
            break
        time.sleep(0.5)
    time.sleep(2.5)  # two more scrapes: the counters of the last requests are in
    requests_ = by(prometheus, "litellm_proxy_total_requests_metric_total{status_code=\"200\"}", "hashed_api_key", "requested_model")
    spend = by(prometheus, "litellm_spend_metric_total", "hashed_api_key", "model")
    inp = by(prometheus, "litellm_input_tokens_metric_total", "hashed_api_key", "model")
    out = by(prometheus, "litellm_output_tokens_metric_total", "hashed_api_key", "model")
    tot = by(prometheus, "litellm_total_tokens_metric_total", "hashed_api_key", "model")
    deployments = by(prometheus, "litellm_deployment_success_responses_total", "hashed_api_key", "litellm_model_name")
    names = {v: k for k, v in LITELLM_MODEL.items()}
    for (key, model), (count, it, ot, cost) in want.items():
        assert requests_[(key, names[model])] == count
        assert deployments[(key, model)] == count
        assert inp[(key, model)] == it
        assert out[(key, model)] == ot
        assert tot[(key, model)] == it + ot
        assert spend[(key, model)] == pytest.approx(cost, rel=1e-9)
    failed = by(prometheus, "litellm_proxy_failed_requests_metric_total", "hashed_api_key", "exception_status", "exception_class")
    assert failed[(hashlib.sha256(keys["team-a"].encode()).hexdigest(), "404", "model_not_found")] == 1
    # The key-budget gauges: remaining = max - spent.
    remaining = by(prometheus, "litellm_remaining_api_key_budget_metric", "hashed_api_key")
    spent_a = sum(w[3] for (k, _), w in want.items() if k == hashlib.sha256(keys["team-a"].encode()).hexdigest())
    assert remaining[(hashlib.sha256(keys["team-a"].encode()).hexdigest(),)] == pytest.approx(100.0 - spent_a, rel=1e-6)
    # Latency histograms have LiteLLM's buckets and count every answered request.
    lat = by(prometheus, "litellm_request_total_latency_metric_count", "hashed_api_key")
    assert sum(lat.values()) >= n
    ttft = by(prometheus, "litellm_llm_api_time_to_first_token_metric_count", "hashed_api_key")
    assert ttft[(streamer,)] == 2 * 3
    buckets = query(prometheus, "litellm_request_total_latency_metric_bucket")
    les = {dict(k)["le"] for k in buckets}
    assert {"0.005", "0.00625", "300.0", "+Inf"} <= les
    # No label carries a session or request id: every value is bounded.
    series = requests.get(f"{prometheus}/api/v1/series", params={"match[]": '{job="agentbridge"}'}, timeout=5).json()["data"]
    for s in series:
        assert "session" not in json.dumps(s) and "request_id" not in s


def test_json_logs_one_access_line_per_request_and_no_secrets(gateway):
    url, _ = gateway
    key = generate(url, "log-check")
    call(url, key, "bedrock-agent-1", "canary prompt text never logged", False)
    call(url, key, "bedrock-agent-1", "canary streamed prompt never logged", True)
    time.sleep(0.5)
    text = (ROOT / "target" / "pytest-gw-observe.log").read_text()
    lines = [json.loads(l) for l in text.splitlines() if l.startswith("{")]
    assert lines and all("timestamp" in l and "level" in l for l in lines)
    access = [l for l in lines if l.get("target") == "agentbridge::access" and l.get("key_alias") == "log-check"]
    assert len(access) == 2
    for a in access:
        for field in ("request_id", "route", "requested_model", "deployment_id", "hashed_key", "status", "latency", "input_tokens", "output_tokens", "cost", "session"):
            assert field in a, field
        assert a["hashed_key"] == hashlib.sha256(key.encode()).hexdigest()
        assert a["status"] == 200
    assert [a["stream"] for a in access] == [False, True]
    assert "time_to_first_token" in access[1]
    for secret in [key, MASTER_KEY, TEST_SK, "canary prompt text", "canary streamed prompt", "Authorization"]:
        assert secret not in text, f"{secret!r} leaked into the log"


def test_every_dashboard_query_returns_data(gateway, prometheus):
    """docs/grafana-dashboard.json: each panel's PromQL, run on the Prometheus that scraped
    the run above, returns series (rate windows are long enough to cover this short run)."""
    dash = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    empty = [e for e in exprs if not query(prometheus, e)]
    assert not empty, f"queries with no data: {empty}"


def test_remaining_requests_and_tokens_of_a_limited_key(gateway):
    # LiteLLM's v3 limiter reports a key's key-wide limits when it has no per-model ones
    # (agentbridge keys have only key-wide rpm_limit / tpm_limit): what is left this minute,
    # per key and requested model, after each request.
    url, _ = gateway
    r = requests.post(f"{url}/key/generate", json={"key_alias": "limited", "rpm_limit": 50, "tpm_limit": 100000},
                      headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    used = 0
    for i in range(3):
        it, ot, _ = call(url, key, "bedrock-agent-1", f"headroom {i}", False)
        used += it + ot
    text = requests.get(f"{url}/metrics", headers=ADMIN, timeout=5).text
    hashed = hashlib.sha256(key.encode()).hexdigest()

    def gauge(name):
        for line in text.splitlines():
            if line.startswith(name + "{") and f'hashed_api_key="{hashed}"' in line:
                assert 'model="bedrock-agent-1"' in line and 'api_key_alias="limited"' in line, line
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} has no series for the key")

    # A minute boundary between the calls would restart the window: both gauges are then
    # larger, never smaller, than a single window's figures.
    assert gauge("litellm_remaining_api_key_requests_for_model") >= 50 - 3
    assert gauge("litellm_remaining_api_key_requests_for_model") <= 50 - 1
    assert gauge("litellm_remaining_api_key_tokens_for_model") >= 100000 - used
    assert gauge("litellm_remaining_api_key_tokens_for_model") < 100000
