#!/usr/bin/env python3
"""Calls per second of a Python SDK's completion() against the emulator, at concurrency 1
and 64 (threads), for the `agentbridge` package and LiteLLM's SDK (`litellm.completion`,
`bedrock/agent` provider). Run by `scripts/bench --python-sdk` in a virtualenv holding both;
prints one JSON object: {"agentbridge": {"1": {...}, "64": {...}}, "litellm": {...}}.

Usage: bench_python_sdk.py EMULATOR_URL DURATION_SECONDS
"""
import json
import os
import sys
import threading
import time

MODEL = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"
QUESTION = "Analyze our customer data and suggest retention strategies"


def measure(call, conns, duration):
    """Runs `call` in `conns` threads for `duration` seconds; calls/s and latency percentiles."""
    latencies, lock, errors = [], threading.Lock(), []
    stop = time.perf_counter() + duration

    def worker():
        mine = []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                call()
            except Exception as e:  # noqa: BLE001 - counted, and the first one is shown
                errors.append(repr(e))
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(conns)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    return {"rps": n / elapsed, "requests": n, "errors": len(errors), "first_error": errors[0] if errors else None,
            "p50": latencies[n // 2] * 1000 if n else 0.0, "p99": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0}


def main():
    emulator, duration = sys.argv[1], float(sys.argv[2])
    kwargs = dict(model=MODEL, messages=[{"role": "user", "content": QUESTION}],
                  aws_access_key_id="AKIDAGENTBRIDGEEMU", aws_secret_access_key="agentbridge-emulator-secret-key",
                  aws_region_name="us-west-2", api_base=emulator)
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import agentbridge
    import litellm
    litellm.suppress_debug_info = True
    sdks = {"agentbridge": agentbridge.completion, "litellm": litellm.completion}
    results = {}
    for name, completion in sdks.items():
        answer = completion(**kwargs).choices[0].message.content
        assert answer, f"{name} gave no answer"
        results[name] = {}
        for conns in (1, 64):
            measure(lambda: completion(**kwargs), conns, min(duration, 2))  # warm-up
            results[name][str(conns)] = measure(lambda: completion(**kwargs), conns, duration)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
