"""What the UI suite, the screenshot script and the load script share: a gateway with a
master key on the emulator, signing in over HTTP, traffic through the OpenAI SDK, and a
headless Chromium (Debian's `chromium` driven by its `chromedriver` through Selenium)."""
import hashlib
import os
import pathlib
import re
import sys
import time

import requests

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
from conftest import MASTER_KEY, ROOT, TEST_AK, TEST_SK, Proc, free_port, write_config  # noqa: E402,F401

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
UI_SOURCES = ROOT / "crates" / "agentbridge-proxy" / "src" / "ui"
SHOTS = ROOT / "docs" / "ui"


def ui_sources_hash() -> str:
    """SHA-256 over the UI's source files (path and content), in path order."""
    h = hashlib.sha256()
    for p in sorted(UI_SOURCES.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(UI_SOURCES)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def start_emulator(log_name="ui-emulator"):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return url, Proc(["emulator", "--port", str(port)], f"{url}/_emulator/health", log_name=log_name)


def start_gateway(emulator_url, workdir: pathlib.Path, log_name="ui-gateway", extra=""):
    """A gateway with a master key; its SQLite database is `workdir/agentbridge.db`."""
    cfg = workdir / "config.yaml"
    write_config(cfg, emulator_url, MASTER_KEY, extra=extra)
    port = free_port()
    env = dict(os.environ, EMU_AK=TEST_AK, EMU_SK=TEST_SK, TEST_MASTER_KEY=MASTER_KEY, RUST_LOG="info")
    proc = Proc(["--config", str(cfg), "--port", str(port), "--host", "127.0.0.1"],
                f"http://127.0.0.1:{port}/health/liveliness", env=env, log_name=log_name)
    return f"http://127.0.0.1:{port}", proc


def generate(url, alias, **fields):
    r = requests.post(f"{url}/key/generate", json={"key_alias": alias, **fields}, headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def signed_in(url) -> requests.Session:
    """An HTTP session signed in to the UI with the master key."""
    s = requests.Session()
    r = s.post(f"{url}/ui/login", data={"master_key": MASTER_KEY}, allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    return s


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, "the page has a form token"
    return m.group(1)


def wait_logged(url, session: requests.Session, n: int, timeout=20.0):
    """Waits until the overview counts `n` requests (the log is written every 0.5 s)."""
    deadline = time.time() + timeout
    while True:
        html = session.get(f"{url}/ui/", timeout=10).text
        m = re.search(r'data-total="requests">([0-9,]+)<', html)
        got = int(m.group(1).replace(",", "")) if m else -1
        if got >= n or time.time() > deadline:
            return got
        time.sleep(0.3)


def browser(width=1280, height=900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def fixed_traffic(url):
    """The same traffic every time: three keys, two models, streamed and not, one refused
    call. Returns {alias: key} and [(alias, model, cost, stream, ok)] per call."""
    import openai

    keys = {alias: generate(url, alias, max_budget=budget)
            for alias, budget in (("team-a", 5.0), ("team-b", 2.0), ("batch-jobs", 1.0))}
    plan = [("team-a", "bedrock-agent-1", 4, False), ("team-a", "bedrock-agent-2", 2, True),
            ("team-b", "bedrock-agent-1", 3, False), ("batch-jobs", "bedrock-agent-2", 5, False)]
    calls = []
    for alias, model, n, stream in plan:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys[alias], max_retries=0)
        for i in range(n):
            msgs = [{"role": "user", "content": f"question {i} from {alias} to {model}"}]
            if stream:
                out = client.chat.completions.create(model=model, messages=msgs, stream=True,
                                                     stream_options={"include_usage": True})
                assert any(c.choices and c.choices[0].delta.content for c in out)
                calls.append((alias, model, None, True, True))
            else:
                raw = client.chat.completions.with_raw_response.create(model=model, messages=msgs)
                raw.parse()
                calls.append((alias, model, float(raw.headers["x-litellm-response-cost"]), False, True))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys["team-b"], max_retries=0)
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("an unknown model is refused")
    except openai.NotFoundError:
        calls.append(("team-b", "", 0.0, False, False))
    return keys, calls
