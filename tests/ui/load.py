"""Fills a gateway's request log with N rows (default 1,000,000) spread over 30 days, 20 keys
and the config's models, then prints the server time (`Server-Timing`) of each admin UI page:
the median of 5 loads after one warm-up. A measurement, not a test.

The rows go straight into the SQLite database while the gateway is stopped (the gateway's own
writer would take minutes for a million), and the hourly rollups are built from them with one
INSERT ... SELECT, as the writer would have added them.
"""
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import pathlib
import uuid

from uihelp import generate, signed_in, start_emulator, start_gateway

HOUR = 3_600_000


def fill(db: pathlib.Path, n: int, key_hashes, models):
    rnd = random.Random(17)
    con = sqlite3.connect(db)
    now = int(time.time() * 1000)
    start = now - 30 * 24 * HOUR
    t0 = time.time()
    batch = []
    for i in range(n):
        status = rnd.choices([200, 429, 404, 502], weights=[96, 2, 1, 1])[0]
        stream = rnd.random() < 0.3
        it, ot = rnd.randint(20, 2000), rnd.randint(5, 800)
        batch.append((str(uuid.UUID(int=rnd.getrandbits(128))), start + (now - start) * i // n, rnd.choice(key_hashes), None,
                      rnd.choice(models), rnd.choice(["chat", "chat", "responses", "messages"]), None, status,
                      rnd.uniform(80, 4000), rnd.uniform(50, 900) if stream else None, it if status == 200 else 0,
                      ot if status == 200 else 0, (it * 3e-6 + ot * 1.5e-5) if status == 200 else 0.0,
                      str(uuid.UUID(int=rnd.getrandbits(128))), None if status == 200 else "error"))
        if len(batch) == 50_000:
            con.executemany("INSERT INTO request_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    if batch:
        con.executemany("INSERT INTO request_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
    con.execute("""INSERT INTO request_rollup (hour, key_hash, model, requests, errors, spend, input_tokens, output_tokens)
                   SELECT time_ms - time_ms % 3600000, key_hash, model, COUNT(*), SUM(status >= 400), SUM(cost),
                          SUM(input_tokens), SUM(output_tokens)
                   FROM request_log GROUP BY 1, 2, 3
                   ON CONFLICT (hour, key_hash, model) DO NOTHING""")
    con.commit()
    rows = con.execute("SELECT COUNT(*) FROM request_log").fetchone()[0]
    rollups = con.execute("SELECT COUNT(*) FROM request_rollup").fetchone()[0]
    con.close()
    print(f"filled {rows:,} request rows and {rollups:,} hourly rollups in {time.time() - t0:.1f} s")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        emu_url, emu = start_emulator("ui-load-emulator")
        try:
            url, gw = start_gateway(emu_url, d, "ui-load-gateway")
            keys = [generate(url, f"team-{i:02}", max_budget=1000.0) for i in range(20)]
            gw.stop()
            import hashlib
            hashes = [hashlib.sha256(k.encode()).hexdigest() for k in keys]
            fill(d / "agentbridge.db", n, hashes, ["bedrock-agent-1", "bedrock-agent-2"])
            url, gw = start_gateway(emu_url, d, "ui-load-gateway")
            s = signed_in(url)
            first = s.get(f"{url}/ui/requests", timeout=30).text
            import re
            cursor = re.search(r'id="next-page" href="([^"]+)"', first).group(1).replace("&amp;", "&")
            pages = [
                ("overview, 24 hours", "/ui/"),
                ("overview, 7 days", "/ui/?hours=168"),
                ("overview, 30 days", "/ui/?hours=720"),
                ("keys (20)", "/ui/keys"),
                ("models", "/ui/models"),
                ("requests, newest", "/ui/requests"),
                ("requests, next page", cursor),
                ("requests, one key", f"/ui/requests?key={hashes[3]}"),
                ("requests, one model", "/ui/requests?model=bedrock-agent-2"),
                ("requests, failed", "/ui/requests?status=error"),
                ("requests, status 404", "/ui/requests?status=404"),
                ("requests, key + model + failed", f"/ui/requests?key={hashes[3]}&model=bedrock-agent-2&status=error"),
            ]
            print(f"{'page':34} {'server ms (median of 5)':>24} {'max':>8}")
            for name, path in pages:
                times = []
                for i in range(6):
                    r = s.get(url + path, timeout=30)
                    assert r.status_code == 200, (path, r.status_code)
                    if i:
                        times.append(float(r.headers["server-timing"].split("dur=")[1]))
                print(f"{name:34} {statistics.median(times):>24.1f} {max(times):>8.1f}")
            gw.stop()
        finally:
            emu.stop()


if __name__ == "__main__":
    main()
