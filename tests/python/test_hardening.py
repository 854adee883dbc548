"""Limits, upstream faults, retries, cancellation, secrets in logs, graceful shutdown."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import BIN, MASTER_KEY, ROOT, TEST_AK, TEST_SK, Proc, free_port, write_config

LIMITS = """agentbridge:
  max_body_bytes: 65536
  header_read_timeout_secs: 1
  max_concurrent_requests: 4
  shutdown_grace_secs: 10
"""


def start_gateway(emulator_url, tmp_path, extra_params="", limits=LIMITS, log_name="pytest-gw-hard", rust_log="info"):
    cfg = tmp_path / "config.yaml"
    write_config(cfg, emulator_url, MASTER_KEY, extra=limits)
    if extra_params:
        text = cfg.read_text().replace("      num_retries: 0\n", extra_params)
        cfg.write_text(text)
    port = free_port()
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY, RUST_LOG=rust_log)
    proc = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name=log_name)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def hard(emulator_url, tmp_path_factory):
    params = "      num_retries: 2\n      stream_timeout: 1\n      timeout: 3\n"
    proc, url = start_gateway(emulator_url, tmp_path_factory.mktemp("hard"), extra_params=params)
    yield url
    proc.stop()


H = {"Authorization": f"Bearer {MASTER_KEY}"}


def chat(url, content, stream=False, **extra):
    body = {"model": "bedrock-agent-1", "messages": [{"role": "user", "content": content}], "stream": stream, **extra}
    return requests.post(f"{url}/v1/chat/completions", json=body, headers=H, stream=stream, timeout=30)


def sse_events(r):
    return [l[6:] for l in r.iter_lines(decode_unicode=True) if l.startswith("data: ")]


def test_oversized_body_is_413(hard):
    r = chat(hard, "x" * 70_000)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"
    assert "65536" in r.json()["error"]["message"]


def test_slow_client_headers_are_cut_off(hard):
    host, port = hard.replace("http://", "").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    start = time.time()
    s.settimeout(5)
    data = s.recv(1024)  # the server closes (or answers 408) once the header timeout passes
    elapsed = time.time() - start
    assert elapsed < 3, elapsed
    assert data == b"" or b"408" in data.split(b"\r\n")[0]
    s.close()


def test_idle_keepalive_connection_is_closed(hard):
    host, port = hard.replace("http://", "").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    first = s.recv(4096)
    assert b"200" in first
    start = time.time()
    rest = s.recv(4096)
    assert rest == b"" and time.time() - start < 3


def test_concurrency_cap_gives_503(hard):
    results = []

    def slow():
        r = chat(hard, "hold the line emulate:slow=250", stream=True)
        results.append(r.status_code)
        r.content  # drain

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    r = chat(hard, "one too many")
    for t in threads:
        t.join()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "overloaded"
    assert r.headers["x-should-retry"] == "true"
    assert results == [200] * 4


def test_upstream_idle_timeout_mid_stream_is_in_band(hard):
    start = time.time()
    r = chat(hard, "x emulate:stall", stream=True)
    events = sse_events(r)
    assert time.time() - start < 5
    err = json.loads(events[-1])["error"]
    assert err["code"] == "upstream_timeout" and err["type"] == "timeout"


def test_upstream_stall_non_streamed_is_504(hard):
    r = chat(hard, "x emulate:stall")
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"


def test_total_timeout_is_504(hard):
    # Streamed pieces every 800 ms: each gap is under stream_timeout (1 s), the whole over timeout (3 s).
    r = chat(hard, "a question long enough to need many streamed chunks " * 2 + "emulate:slow=800", stream=True)
    events = sse_events(r)
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"


def test_throttles_before_the_stream_are_retried(hard, recorded):
    sid = f"retry-{uuid.uuid4()}"
    r = chat(hard, "x emulate:fail_first=2", session_id=sid)
    assert r.status_code == 200, r.text
    assert len([x for x in recorded() if x["sessionId"] == sid]) == 3


def test_retries_stop_at_num_retries(hard, recorded):
    sid = f"retry-{uuid.uuid4()}"
    r = chat(hard, "x emulate:fail_first=5", session_id=sid)
    assert r.status_code == 429
    assert len([x for x in recorded() if x["sessionId"] == sid]) == 3  # 1 + num_retries


def test_accepted_requests_are_never_sent_twice(hard, recorded):
    sid = f"once-{uuid.uuid4()}"
    r = chat(hard, "x emulate:exception=internalServerException", session_id=sid)
    assert r.status_code == 500
    assert len([x for x in recorded() if x["sessionId"] == sid]) == 1


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_malformed_upstream_frames_are_clean_errors(hard, fault):
    r = chat(hard, f"x emulate:{fault}", stream=True)
    err = json.loads(sse_events(r)[-1])["error"]
    assert err["code"] == "upstream_malformed"
    r = chat(hard, f"x emulate:{fault}")
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_malformed"


def test_client_disconnect_drops_the_upstream_request_within_a_second(gateway_url, emulator_url):
    before = requests.get(f"{emulator_url}/_emulator/stats").json()["cancelled"]
    r = chat(gateway_url, "x emulate:stall", stream=True)
    it = r.iter_lines()
    first = next(l for l in it if l)
    assert first.startswith(b"data: ")
    r.close()
    deadline = time.time() + 1.0
    while time.time() < deadline:
        if requests.get(f"{emulator_url}/_emulator/stats").json()["cancelled"] > before:
            break
        time.sleep(0.02)
    assert requests.get(f"{emulator_url}/_emulator/stats").json()["cancelled"] > before


@pytest.mark.parametrize("json_logs", [False, True], ids=["text", "json"])
def test_secrets_never_reach_the_logs(emulator_url, tmp_path, json_logs):
    limits = LIMITS + ("litellm_settings:\n  json_logs: true\n" if json_logs else "")
    proc, url = start_gateway(emulator_url, tmp_path, limits=limits, log_name="pytest-gw-secrets", rust_log="debug")
    try:
        chat(url, "hello secret prompt text")
        list(chat(url, "streamed secret prompt text", stream=True).iter_lines())
        requests.post(f"{url}/v1/chat/completions", headers={"Authorization": "Bearer sk-wrong-key-should-not-be-logged"},
                      json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "x"}]})
        chat(url, "x emulate:error=AccessDeniedException")
    finally:
        proc.stop()
    log = (ROOT / "target" / "pytest-gw-secrets.log").read_text()
    assert "completed" in log, "the log has request lines"
    if json_logs:
        lines = [l for l in log.splitlines() if l.startswith("{")]
        assert lines and all(json.loads(l)["level"] for l in lines), "the log is JSON lines"
    for secret in [MASTER_KEY, TEST_SK, "sk-wrong-key-should-not-be-logged", "secret prompt text", "Authorization", "authorization:"]:
        assert secret not in log, f"{secret!r} leaked into the log"


def test_graceful_shutdown_lets_streams_finish_and_exits_zero(emulator_url, tmp_path):
    proc, url = start_gateway(emulator_url, tmp_path, log_name="pytest-gw-shutdown")
    r = chat(url, "a longer answer that streams in several pieces emulate:slow=150", stream=True)
    it = r.iter_lines(decode_unicode=True)
    assert next(l for l in it if l).startswith("data: ")
    proc.p.send_signal(signal.SIGTERM)
    rest = [l[6:] for l in it if l.startswith("data: ")]
    assert rest[-1] == "[DONE]"
    assert proc.p.wait(timeout=10) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health/liveliness", timeout=1)
    proc.log.close()


def test_connect_timeout_is_a_clear_error(emulator_url, tmp_path):
    # A listener that never accepts, its backlog full: new connections hang in SYN.
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(0)
    port = sink.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.2)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"""model_list:
  - model_name: blackhole
    litellm_params:
      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW
      aws_access_key_id: {TEST_AK}
      aws_secret_access_key: {TEST_SK}
      aws_region_name: us-west-2
      api_base: http://127.0.0.1:{port}
      connect_timeout: 1
      num_retries: 0
""")
    gw_port = free_port()
    proc = Proc(["--config", str(cfg), "--port", str(gw_port)], f"http://127.0.0.1:{gw_port}/health/liveliness", log_name="pytest-gw-connect")
    try:
        start = time.time()
        r = requests.post(f"http://127.0.0.1:{gw_port}/v1/chat/completions",
                          json={"model": "blackhole", "messages": [{"role": "user", "content": "x"}]}, timeout=30)
        elapsed = time.time() - start
        assert r.status_code in (502, 504), r.text
        assert r.json()["error"]["code"] in ("upstream_unreachable", "upstream_timeout")
        assert elapsed < 5, elapsed
    finally:
        proc.stop()
        for c in fillers:
            c.close()
        sink.close()
