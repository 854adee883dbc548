"""The reference page's three LiteLLM SDK snippets, with only the import changed
(`import litellm` -> `import agentbridge as litellm`; the page's third snippet imports
`from litellm import completion` yet calls `litellm.completion`, so it gets the same line).
Each runs as its own program, as a user would run it."""
import os
import pathlib
import subprocess
import sys

SNIPPETS = pathlib.Path(__file__).parent / "snippets"


def run(name, aws_env):
    out = subprocess.run([sys.executable, str(SNIPPETS / name)], env=dict(os.environ, **aws_env),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_only_the_import_differs_from_the_page():
    for name in ("basic_completion.py", "streaming.py", "custom_parameters.py"):
        first = (SNIPPETS / name).read_text().splitlines()[0]
        assert first == "import agentbridge as litellm"
        assert "agentbridge" not in "\n".join((SNIPPETS / name).read_text().splitlines()[1:])


def test_basic_completion_prints_the_answer_and_its_cost(aws_env):
    lines = run("basic_completion.py", aws_env).splitlines()
    assert lines[0] == ("Emulated agent L1RT58GYRW (alias MFPSBCXYTW) received: "
                        "Hi, I need help with analyzing our Q3 sales data and generating a summary report")
    assert lines[1].startswith("Response cost: $")
    assert float(lines[1].split("$")[1]) > 0


def test_streaming_prints_the_deltas(aws_env):
    out = run("streaming.py", aws_env)
    assert out.startswith("Emulated agent L1RT58GYRW")
    assert out.rstrip().endswith("Can you help me plan a marketing campaign and provide step-by-step execution details?")


def test_custom_parameter_reaches_the_agent(aws_env, recorded):
    run("custom_parameters.py", aws_env)
    body = recorded()[-1]["body"]
    assert body["invocationId"] == "my-test-invocation-id"
    assert body["inputText"] == "Hi who is ishaan cto of litellm, tell me 10 things about him"
