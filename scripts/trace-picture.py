#!/usr/bin/env python3
"""Draws docs/trace-multistep.svg: one real trace, as exported by the gateway.

Starts the OTLP receiver (tests/observability/otlp_receiver.py), the emulator and a gateway
exporting to it over OTLP/HTTP; sends one Chat Completions call to an agent with a
multi-step trace (`emulate:multistep`) with a W3C traceparent; stops the gateway (which
flushes its exporter) and draws the spans of that trace, as received, as a waterfall.
The spans are also written beside the picture as JSON.

    .venv/bin/python scripts/trace-picture.py [--binary target/debug/agentbridge] [--out docs/trace-multistep.svg]
"""
from __future__ import annotations

import argparse
import html
import json
import os
import pathlib
import secrets
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "observability"))
from otlp_receiver import Receiver, free_port  # noqa: E402

TEST_AK, TEST_SK = "AKIDAGENTBRIDGEEMU", "agentbridge-emulator-secret-key"
COLORS = {"SERVER": "#7f8c8d", "invoke_agent": "#2e86de", "chat": "#8e44ad", "execute_tool": "#e67e22",
          "retrieval": "#27ae60", "guardrail": "#c0392b", "step": "#95a5a6"}


def wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def record(binary: str) -> list[dict]:
    receiver = Receiver()
    procs = []
    try:
        eport, gport = free_port(), free_port()
        emu = subprocess.Popen([binary, "emulator", "--port", str(eport)], stdout=subprocess.DEVNULL)
        procs.append(emu)
        wait(f"http://127.0.0.1:{eport}/_emulator/health", emu)
        cfg = pathlib.Path(tempfile.mkdtemp()) / "config.yaml"
        cfg.write_text(f"""model_list:
  - model_name: support-supervisor
    litellm_params:
      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW
      aws_access_key_id: os.environ/EMU_AK
      aws_secret_access_key: os.environ/EMU_SK
      aws_region_name: us-west-2
      api_base: http://127.0.0.1:{eport}
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(EMU_AK=TEST_AK, EMU_SK=TEST_SK, OTEL_SERVICE_NAME="agentbridge",
                   OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.http_port}")
        gw = subprocess.Popen([binary, "--config", str(cfg), "--port", str(gport), "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, env=env)
        procs.append(gw)
        wait(f"http://127.0.0.1:{gport}/health/liveliness", gw)
        trace_id = secrets.token_hex(16)
        r = requests.post(f"http://127.0.0.1:{gport}/v1/chat/completions", timeout=30,
                          headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
                          json={"model": "support-supervisor", "messages": [
                              {"role": "user", "content": "Is my invoice paid, and will it rain in Paris? emulate:multistep"}]})
        r.raise_for_status()
        gw.terminate()
        gw.wait(timeout=20)
        return [s for s in receiver.spans() if s["trace_id"] == trace_id]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        receiver.stop()


def color(s: dict) -> str:
    if s["kind"] == "SERVER":
        return COLORS["SERVER"]
    return COLORS.get(s["attributes"].get("gen_ai.operation.name") or s["name"], COLORS["step"])


def rows(spans: list[dict]) -> list[tuple[int, dict]]:
    ids = {s["span_id"] for s in spans}
    by_parent: dict[str, list[dict]] = {}
    for s in spans:
        by_parent.setdefault(s["parent_span_id"] if s["parent_span_id"] in ids else "", []).append(s)
    out: list[tuple[int, dict]] = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted(by_parent.get(parent, []), key=lambda s: (s["start"], -s["end"])):
            out.append((depth, s))
            walk(s["span_id"], depth + 1)

    walk("", 0)
    return out


def svg(spans: list[dict]) -> str:
    laid = rows(spans)
    t0 = min(s["start"] for s in spans)
    t1 = max(s["end"] for s in spans)
    label_w, bar_w, row_h, top = 330, 540, 22, 44
    width, height = label_w + bar_w + 150, top + row_h * len(laid) + 30
    scale = bar_w / max(t1 - t0, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="DejaVu Sans, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">One trace exported by agentbridge over OTLP ({(t1 - t0) / 1e6:.0f} ms)</text>']
    for ms in range(0, int((t1 - t0) / 1e6) + 1, 50):
        x = label_w + ms * 1e6 * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{height - 24}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{top - 12}" fill="#999" font-size="10" text-anchor="middle">{ms} ms</text>')
    for i, (depth, s) in enumerate(laid):
        y = top + i * row_h
        x = label_w + (s["start"] - t0) * scale
        w = max((s["end"] - s["start"]) * scale, 1.5)
        a = s["attributes"]
        tokens = ""
        if "gen_ai.usage.input_tokens" in a:
            tokens = f' · {a["gen_ai.usage.input_tokens"]}→{a["gen_ai.usage.output_tokens"]} tok'
        out.append(f'<text x="{10 + depth * 14}" y="{y + 15}">{html.escape(s["name"])}</text>')
        out.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="2" fill="{color(s)}"/>')
        out.append(f'<text x="{x + w + 4:.1f}" y="{y + 15}" fill="#555" font-size="10">'
                   f'{(s["end"] - s["start"]) / 1e6:.0f} ms{html.escape(tokens)}</text>')
    out.append(f'<text x="10" y="{height - 8}" fill="#999" font-size="10">Drawn by scripts/trace-picture.py from the spans an OTLP receiver got; '
               'service agentbridge, agent = the emulator (emulate:multistep).</text>')
    out.append("</svg>")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "target" / "debug" / "agentbridge"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "trace-multistep.svg"))
    args = ap.parse_args()
    spans = record(args.binary)
    if not spans:
        raise SystemExit("no spans received")
    out = pathlib.Path(args.out)
    out.write_text(svg(spans))
    out.with_suffix(".json").write_text(json.dumps(sorted(spans, key=lambda s: s["start"]), indent=1) + "\n")
    print(f"{out}: {len(spans)} spans")


if __name__ == "__main__":
    main()
