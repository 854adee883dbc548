"""Fixtures that start the real agentbridge binary (emulator and gateway) on loopback."""
import os
import socket
import subprocess
import time
import pathlib

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("AGENTBRIDGE_BIN", str(ROOT / "target" / "debug" / "agentbridge"))
TEST_AK = "AKIDAGENTBRIDGEEMU"
TEST_SK = "agentbridge-emulator-secret-key"
MASTER_KEY = "sk-conformance-master-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class Proc:
    def __init__(self, args, health, env=None, log_name="proc"):
        self.log = open(ROOT / "target" / f"{log_name}.log", "w")
        self.p = subprocess.Popen([BIN, *args], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_http(health, self.p)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()


@pytest.fixture(scope="session")
def emulator_url():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Proc(["emulator", "--port", str(port)], f"{url}/_emulator/health", log_name="pytest-emulator")
    yield url
    proc.stop()


def write_config(path: pathlib.Path, emulator_url: str, master_key: str | None, extra: str = "") -> None:
    text = f"""model_list:
  - model_name: bedrock-agent-1
    litellm_params:
      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW
      aws_access_key_id: os.environ/EMU_AK
      aws_secret_access_key: os.environ/EMU_SK
      aws_region_name: us-west-2
      api_base: {emulator_url}
      num_retries: 0
  - model_name: bedrock-agent-2
    litellm_params:
      model: bedrock/agent/AGENT456/ALIAS789
      aws_access_key_id: os.environ/EMU_AK
      aws_secret_access_key: os.environ/EMU_SK
      aws_region_name: us-east-1
      api_base: {emulator_url}
      invocationId: my-test-invocation-id
      num_retries: 0
{extra}"""
    if master_key:
        text += f"general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n"
    path.write_text(text)


@pytest.fixture(scope="session")
def gateway_url(emulator_url, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("gw") / "config.yaml"
    write_config(cfg, emulator_url, MASTER_KEY)
    port = free_port()
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY, RUST_LOG="info")
    proc = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"], f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name="pytest-gateway")
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture()
def recorded(emulator_url):
    """The InvokeAgent bodies the emulator received during the test."""
    requests.delete(f"{emulator_url}/_emulator/requests", timeout=5)

    def get():
        return requests.get(f"{emulator_url}/_emulator/requests", timeout=5).json()

    return get
