"""Credentials from the AWS default chain's HTTP sources, as a Kubernetes pod gets them.

EKS Pod Identity (like ECS task roles) hands the pod AWS_CONTAINER_CREDENTIALS_FULL_URI and
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; the default chain fetches temporary credentials from
that endpoint over HTTP. Here the endpoint is a loopback server, the agent the emulator that
accepts only those credentials: an answer proves the chain fetched them and the gateway signed
with them (and that aws-config has an HTTP client, which the build supplies itself).
"""
import datetime
import http.server
import json
import os
import threading

import pytest
import requests

from conftest import Proc, free_port

POD_AK = "ASIAPODIDENTITYTEST1"
POD_SK = "pod-identity-secret-access-key-for-tests"
POD_TOKEN = "pod-identity-session-token"
AUTH_TOKEN = "eks-pod-identity-agent-token"


class CredentialsEndpoint(http.server.BaseHTTPRequestHandler):
    """The Pod Identity agent: credentials for the right Authorization header only."""

    calls: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        ok = self.headers.get("Authorization") == AUTH_TOKEN
        CredentialsEndpoint.calls.append((self.path, ok))
        if not ok:
            self.send_response(403)
            self.end_headers()
            return
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        body = json.dumps({
            "AccessKeyId": POD_AK,
            "SecretAccessKey": POD_SK,
            "Token": POD_TOKEN,
            "AccountId": "123456789012",
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def credentials_endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), CredentialsEndpoint)
    CredentialsEndpoint.calls = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/credentials"
    server.shutdown()


def test_pod_identity_credentials_sign_the_agent_call(credentials_endpoint, tmp_path):
    emu_port = free_port()
    emulator = Proc(["emulator", "--port", str(emu_port), "--access-key-id", POD_AK, "--secret-access-key", POD_SK],
                    f"http://127.0.0.1:{emu_port}/_emulator/health", log_name="pytest-emulator-pod-identity")
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(AUTH_TOKEN)
    cfg = tmp_path / "config.yaml"
    # No keys, profile or role in the config: the default chain decides.
    cfg.write_text(f"""model_list:
  - model_name: bedrock-agent-1
    litellm_params:
      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW
      aws_region_name: us-west-2
      api_base: http://127.0.0.1:{emu_port}
      num_retries: 0
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(tmp_path),  # no ~/.aws files
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",  # never IMDS, which is off this machine
        AWS_CONTAINER_CREDENTIALS_FULL_URI=credentials_endpoint,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file),
        RUST_LOG="info",
    )
    port = free_port()
    gateway = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                   f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name="pytest-gateway-pod-identity")
    try:
        r = requests.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                          json={"model": "bedrock-agent-1", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
        assert CredentialsEndpoint.calls, "the credentials endpoint was never called"
        assert all(ok for _, ok in CredentialsEndpoint.calls), CredentialsEndpoint.calls
        # The emulator checked the signature with POD_SK and the session token it came with.
        seen = requests.get(f"http://127.0.0.1:{emu_port}/_emulator/requests", timeout=5).json()
        assert seen, "the emulator recorded no call"
    finally:
        gateway.stop()
        emulator.stop()
