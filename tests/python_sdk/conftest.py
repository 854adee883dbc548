"""Starts the emulator (the real `agentbridge emulator` binary) on loopback and points the
installed `agentbridge` package at it, the way a user's environment would."""
import os
import pathlib
import socket
import subprocess
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("AGENTBRIDGE_BIN", str(ROOT / "target" / "debug" / "agentbridge"))
TEST_AK = "AKIDAGENTBRIDGEEMU"
TEST_SK = "agentbridge-emulator-secret-key"
MODEL = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="session")
def emulator_url():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(ROOT / "target" / "pytest-python-sdk-emulator.log", "w")
    proc = subprocess.Popen([BIN, "emulator", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while True:
        assert proc.poll() is None, f"emulator exited with {proc.returncode}"
        try:
            requests.get(f"{url}/_emulator/health", timeout=0.5)
            break
        except requests.RequestException:
            assert time.time() < deadline, "emulator did not come up"
            time.sleep(0.05)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def aws_env(emulator_url):
    """The environment of a user of the emulator (the same variables the Rust examples use)."""
    env = {
        "AWS_BEDROCK_RUNTIME_ENDPOINT": emulator_url,
        "AWS_REGION": "us-west-2",
        "AWS_ACCESS_KEY_ID": TEST_AK,
        "AWS_SECRET_ACCESS_KEY": TEST_SK,
    }
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        os.environ.pop(k, None)
    os.environ.update(env)
    return env


@pytest.fixture()
def emu(emulator_url, aws_env):
    """The emulator's URL, with this process's environment pointing at it."""
    return emulator_url


@pytest.fixture()
def recorded(emu):
    """The InvokeAgent requests the emulator received during the test."""
    requests.delete(f"{emu}/_emulator/requests", timeout=5)

    def get():
        return requests.get(f"{emu}/_emulator/requests", timeout=5).json()

    return get


@pytest.fixture()
def cancelled(emu):
    """Waits (up to 5 s) until the emulator has seen a client close a call since the test
    began; returns whether it did."""
    def count():
        return requests.get(f"{emu}/_emulator/stats", timeout=5).json()["cancelled"]

    before = count()

    def seen():
        deadline = time.time() + 5
        while time.time() < deadline:
            if count() > before:
                return True
            time.sleep(0.02)
        return count() > before

    return seen
