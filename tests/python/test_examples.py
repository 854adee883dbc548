"""The Rust examples print what the reference docs' Python snippets print."""
import os
import pathlib
import subprocess

from conftest import ROOT, TEST_AK, TEST_SK

EXAMPLES = pathlib.Path(os.environ.get("AGENTBRIDGE_EXAMPLES", ROOT / "target" / "debug" / "examples"))


def run(name, emulator_url, recorded=None):
    env = dict(os.environ, AWS_BEDROCK_RUNTIME_ENDPOINT=emulator_url, AWS_REGION="us-west-2",
               AWS_ACCESS_KEY_ID=TEST_AK, AWS_SECRET_ACCESS_KEY=TEST_SK)
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    out = subprocess.run([str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_basic_completion_prints_content_and_cost(emulator_url):
    lines = run("basic_completion", emulator_url).splitlines()
    assert lines[0] == ("Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: "
                        "Hi, I need help with analyzing our Q3 sales data and generating a summary report")
    assert lines[1].startswith("Response cost: $0.00")
    assert float(lines[1].split("$")[1]) > 0


def test_streaming_prints_the_deltas(emulator_url):
    out = run("streaming", emulator_url)
    assert out.strip().endswith("Can you help me plan a marketing campaign and provide step-by-step execution details?")


def test_custom_parameter_reaches_the_agent(emulator_url, recorded):
    run("custom_parameters", emulator_url)
    assert recorded()[-1]["body"]["invocationId"] == "my-test-invocation-id"
