"""Scenario k: the capacity model of docs/OPERATIONS.md checked at small scale.

    .venv/bin/python scripts/bench_k.py [--viewers 1500] [--videos 150] [--rate 150]
                                        [--duration 20] [--out DIR]

Starts, each by PID here: two throwaway durable Postgres clusters (two shards), three
``livehub serve`` nodes with ``LIVEHUB_DATABASE_URLS`` naming both, and nginx from
``deploy/nginx.conf`` in front (posts balanced, streams hashed by video; its
per-address edge limits lifted, since every load-test client is 127.0.0.1). Runs the
load tester through nginx (its audit must be clean), then compares the three nodes'
CPU over the posting + drain window with what the model predicts for that load:

    CPU = idle + P x C_POST + D x C_WRITE + X x C_WAKE      (core-seconds per second)

P posts/s, D deliveries/s (one write each at these per-video rates), X wake-ups/s
decoded (posts land on any of N nodes, so every node has an actor, and a LISTEN, for
every video posted to: X = P x (N-1)), idle the nodes' CPU with every viewer
connected and nothing posted (measured in the settle window of this run). Before the
load test every node takes one post per video (a warm-up: the first post to a video
on a node starts its actor, as in scenario p). The unit costs are the figures of
docs/BENCHMARKS.md (see ``MODEL``). Writes DIR/k.json and prints the comparison;
exit 1 when the audit is not clean.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livehub_loadtest.stack import (  # noqa: E402
    LivehubNode,
    ThrowawayPostgres,
    new_secret,
    render_nginx,
    versions,
)

from livehub.db.cluster import free_port  # noqa: E402
from livehub.identity.auth import mint  # noqa: E402

NODES = 3
RUN_ID = "k"  # the load tester's videos are lt-k-0, lt-k-1, ...
# Unit costs, µs of node CPU (docs/BENCHMARKS.md; derivations in docs/OPERATIONS.md,
# "Capacity model").
MODEL = {
    # b: 200 videos x 10 viewers at 200 posts/s used 0.624 core; minus its 2,000
    # writes/s at C_WRITE: (0.624 - 2000 x 21.1e-6) / 200 = 2.91 ms per post at
    # these rates (one post per transaction, nothing to merge).
    "C_POST_LOW_RATE_US": 2910.0,
    # w: one comment per write to 2,000 SSE viewers, 21.1 µs per write.
    "C_WRITE_US": 21.1,
    # n: decoding a one-comment wake-up payload (10.3 µs) plus asyncpg's dispatch and
    # the actor's delivery hand-off, about 2.5x the decode alone.
    "C_WAKE_US": 25.0,
}


def start_nginx(upstreams: list[int]) -> tuple[subprocess.Popen, str, Path]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = Path(tempfile.mkdtemp(prefix="livehub-bench-nginx-"))
    (prefix / "tmp").mkdir()
    port = free_port()
    # Every load-test client is 127.0.0.1: lift the per-address edge limits.
    conf = render_nginx(prefix, port, upstreams, edge_limits=False)
    base = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    subprocess.run([*base, "-t", "-q"], check=True)
    proc = subprocess.Popen(
        [*base, "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=0.5):
                return proc, url, prefix
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start")


def stop_nginx(proc: subprocess.Popen, prefix: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    shutil.rmtree(prefix, ignore_errors=True)


def warm_up(nodes: list[LivehubNode], secret: str, videos: int) -> None:
    """One post per video on every node, so each node has its actors before measuring."""
    token = mint("warm-up", secret, 600)
    for node in nodes:
        for i in range(videos):
            req = urllib.request.Request(
                f"{node.url}/comments/lt-{RUN_ID}-{i}",
                data=b'{"message": "warm-up"}',
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 201


def predict(posts_per_s: float, deliveries_per_s: float, idle_cores: float) -> dict:
    crossing = posts_per_s * (NODES - 1)
    parts = {
        "idle": idle_cores,
        "posts": posts_per_s * MODEL["C_POST_LOW_RATE_US"] * 1e-6,
        "writes": deliveries_per_s * MODEL["C_WRITE_US"] * 1e-6,
        "wake_ups": crossing * MODEL["C_WAKE_US"] * 1e-6,
    }
    return {"cores": sum(parts.values()), "parts": parts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viewers", type=int, default=1500)
    ap.add_argument("--videos", type=int, default=150)
    ap.add_argument("--rate", type=float, default=150.0, help="posts/s through nginx")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=ROOT / ".livehub/bench")
    ap.add_argument("--peer", default="livehub")  # scripts/bench passes these
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "k-loadtest.json"
    secret = new_secret()
    shards = [ThrowawayPostgres(durable=True), ThrowawayPostgres(durable=True)]
    nodes: list[LivehubNode] = []
    nginx = None
    try:
        for pg in shards:
            pg.start()
        urls = " ".join(pg.dsn() for pg in shards)
        env = {
            "LIVEHUB_DATABASE_URLS": urls,
            "LIVEHUB_POST_RATE_PER_SECOND": "1000000",
            "LIVEHUB_POST_BURST": "1000000",
            "LIVEHUB_ACCESS_LOG": "0",
        }
        for _ in range(NODES):
            node = LivehubNode(shards[0].dsn(), secret, args.workers, dict(env))
            nodes.append(node)
            node.start()
        nginx = start_nginx([n.port for n in nodes])
        warm_up(nodes, secret, args.videos)
        cmd = [
            sys.executable,
            "-m",
            "livehub_loadtest",
            "--url",
            nginx[1],
            "--target",
            "livehub",
            "--viewers",
            str(args.viewers),
            "--videos",
            str(args.videos),
            "--rate",
            str(args.rate),
            "--duration",
            str(args.duration),
            "--settle",
            str(args.settle),
            "--jwt-secret",
            secret,
            "--json",
            str(json_path),
            "--run-id",
            RUN_ID,
            "--note",
            "scripts/bench_k.py: nginx, 3 nodes, 2 shards",
        ]
        for node in nodes:
            cmd += ["--server-pid", str(node.pid)]
        for pg in shards:
            cmd += ["--db-pid", str(pg.postmaster_pid())]
        run = subprocess.run(cmd, cwd=ROOT, timeout=args.duration + 180)
    finally:
        if nginx is not None:
            stop_nginx(nginx[0], nginx[2])
        for node in reversed(nodes):
            node.stop()
        for pg in shards:
            pg.stop()
    rep = json.loads(json_path.read_text())
    server = rep["server"]
    samples = server["samples"]
    idle = (samples["post_start"]["cpu_s"] - samples["connected"]["cpu_s"]) / args.settle
    window = rep["phases_s"]["posting_s"] + rep["phases_s"]["drain_s"]
    posts_per_s = rep["posts"]["accepted"] / window
    deliveries_per_s = rep["deliveries"] / window
    model = predict(posts_per_s, deliveries_per_s, idle)
    measured = server["cpu_core_fraction"]
    error = (measured - model["cores"]) / model["cores"]
    result = {
        "ok": rep["ok"] and run.returncode == 0,
        "audit": rep["audit"],
        "load": {"posts_per_s": posts_per_s, "deliveries_per_s": deliveries_per_s},
        "measured_cores": measured,
        "postgres_cores": rep["postgres"]["cpu_core_fraction"] if rep["postgres"] else None,
        "predicted": model,
        "error": error,
        "model": MODEL,
        "versions": versions(),
    }
    (args.out / "k.json").write_text(json.dumps(result, indent=2))
    print(f"posts/s {posts_per_s:.1f}, deliveries/s {deliveries_per_s:.1f}, audit ok {rep['ok']}")
    print(f"idle (settle window) {idle:.3f} core")
    for name, value in model["parts"].items():
        print(f"  model {name:9s} {value:.3f} core")
    print(f"predicted {model['cores']:.3f} core, measured {measured:.3f} core: {error:+.1%}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
