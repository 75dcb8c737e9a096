"""Scenario p: what one POST costs, livehub beside the stack's floor, one run, one box.

    .venv/bin/python scripts/bench_p.py [--duration 10] [--connections 32] [--out DIR]

Runs wrk (Debian's ``wrk``) with the same POST body and the same connections against,
one after another, each started and stopped by PID here:

  floor           scripts/peers/floor.py: bare Trio + h11, a canned 201 (no app)
  hello-lean      scripts/peers/hello.py on livehub's lean connection layer
  hello-hypercorn the same raw ASGI hello on Hypercorn's trio worker
  livehub         `livehub serve --workers 1` (lean layer), a throwaway durable Postgres
  livehub-hc      the same with LIVEHUB_SERVER=hypercorn (Hypercorn's trio worker)

livehub is measured posting to 200 videos (c) and to one video (c1), after a 3-second
warm-up run (the first post to a video starts its actor); the peers answer any path.
Each row: requests/s, non-2xx responses, and the server's CPU (its process tree;
Postgres apart) per request. The headline is each rate divided by the floor's,
from this run. Writes DIR/p.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livehub_loadtest.procstat import tree_cpu_seconds  # noqa: E402
from livehub_loadtest.stack import livehub_stack, versions  # noqa: E402

from livehub.db.cluster import free_port  # noqa: E402
from livehub.identity.auth import mint  # noqa: E402

PY = sys.executable
BODY = '{"message":"hello world, a comment of ordinary length"}'
LIFTED = {
    "LIVEHUB_POST_RATE_PER_SECOND": "1000000",
    "LIVEHUB_POST_BURST": "1000000",
    "LIVEHUB_ACCESS_LOG": "1",
}


def wrk_script(token: str | None, videos: int) -> str:
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"{auth}"
        "local n = 0\n"
        "request = function()\n"
        f"  n = n % {videos} + 1\n"
        '  return wrk.format(nil, "/comments/v" .. n)\n'
        "end\n"
    )


def run_wrk(url: str, script: str, duration: int, connections: int, pids: list[int]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        cpu0, t0 = tree_cpu_seconds(pids), time.monotonic()
        done = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", f.name, url],
            capture_output=True,
            text=True,
            timeout=duration + 60,
        )
        out = done.stdout
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed against {url}: {done.stdout}{done.stderr}")
        cpu1, t1 = tree_cpu_seconds(pids), time.monotonic()
    finally:
        os.unlink(f.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cpu = cpu1 - cpu0
    return {
        "requests_per_s": rate,
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "server_cpu_percent": round(100 * cpu / (t1 - t0), 1),
        "server_cpu_us_per_request": round(1e6 * cpu / max(total, 1), 1),
    }


@contextlib.contextmanager
def process(args: list[str], port: int, env: dict | None = None):
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/x", data=b"{}")
                urllib.request.urlopen(req, timeout=1).close()
                break
            except OSError as exc:
                if getattr(exc, "code", None):
                    break  # an HTTP error is an answer
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--out", default=str(ROOT / ".livehub" / "bench"))
    ap.add_argument("--peer", default="both", help="ignored (scripts/bench passes it)")
    ap.add_argument("--workers", type=int, default=1, help="ignored: one worker each")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("bench p: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    rows: dict[str, dict] = {}
    d, c = args.duration, args.connections
    peers = {
        "floor": [PY, "scripts/peers/floor.py"],
        "hello-lean": [PY, "scripts/peers/hello.py", "--lean"],
    }
    for name, cmd in peers.items():
        port = free_port()
        with process([*cmd, f"127.0.0.1:{port}"], port) as proc:
            rows[name] = run_wrk(
                f"http://127.0.0.1:{port}", wrk_script(None, 200), d, c, [proc.pid]
            )
        print(name, rows[name], flush=True)
    port = free_port()
    hc = [PY, "-m", "hypercorn", "-k", "trio", "-b", f"127.0.0.1:{port}", "hello:app"]
    with process(hc, port, {"PYTHONPATH": str(ROOT / "scripts" / "peers")}) as proc:
        rows["hello-hypercorn"] = run_wrk(
            f"http://127.0.0.1:{port}", wrk_script(None, 200), d, c, [proc.pid]
        )
    print("hello-hypercorn", rows["hello-hypercorn"], flush=True)
    for name, server in (("livehub", "lean"), ("livehub-hc", "hypercorn")):
        env = {**LIFTED, "LIVEHUB_SERVER": server}
        for videos, label in ((200, "c"), (1, "c1")):
            with livehub_stack(1, 1, env) as (_, nodes):
                node = nodes[0]
                token = mint("bench", node.jwt_secret, 3600)
                script = wrk_script(token, videos)
                # Warm up first: the first post to each video starts its actor (a store
                # read and a LISTEN), which is not what a post costs.
                run_wrk(node.url, script, 3, c, [node.pid])
                row = run_wrk(node.url, script, d, c, [node.pid])
                rows[f"{name}-{label}"] = row
            print(f"{name}-{label}", row, flush=True)
    floor = rows["floor"]["requests_per_s"]
    for row in rows.values():
        row["ratio_to_floor"] = round(row["requests_per_s"] / floor, 3)
    report = {
        "scenario": "p",
        "command": " ".join(sys.argv),
        "cpu_model": cpu_model(),
        "versions": versions(),
        "duration_s": d,
        "connections": c,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "p.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'server':<18} {'req/s':>9} {'x floor':>8} {'CPU %':>6} {'us/req':>7} {'non-2xx':>8}")
    for name, row in rows.items():
        print(
            f"{name:<18} {row['requests_per_s']:>9.0f} {row['ratio_to_floor']:>8.3f}"
            f" {row['server_cpu_percent']:>6.1f} {row['server_cpu_us_per_request']:>7.1f}"
            f" {row['non_2xx']:>8}"
        )
    return 0


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
