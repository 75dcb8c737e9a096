"""Scenario w: server CPU per SSE write at 2,000 connections (the write path itself).

    .venv/bin/python scripts/bench_w.py [--peer livehub|nchan|both] [--viewers 2000]
                                        [--rate 2] [--duration 20] [--procs 2] [--out DIR]

2,000 viewers on one video, ``--rate`` comments/s (evenly spaced), so every write carries
one event: for livehub coalescing is off (``LIVEHUB_COALESCE_MAX_SECONDS=0``) and the
heartbeat is pushed out of the run (``LIVEHUB_HEARTBEAT_SECONDS=3600``), so writes =
deliveries. The load tester counts the socket reads that carried a comment: comments per
read ~1.00 confirms one event per write. CPU per write = server CPU during posting +
drain / writes; for livehub the process's CPU (the write path; Postgres's CPU, reported
too, is the posts' cost) and, as a cross-check, the delivered count from /metrics. nchan
(one nginx worker) is run with the same load as the analogue. Target for livehub: <= 40 us
per write (a naive Quart + Hypercorn generator: ~130 us, measured on a 2-core box). Writes
DIR/w-<peer>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench_livehub import run  # scripts/ is sys.path[0] when run as a script
from livehub_loadtest.stack import Nchan, versions

TARGET_US = 40.0
W_ENV = {"LIVEHUB_COALESCE_MAX_SECONDS": "0", "LIVEHUB_HEARTBEAT_SECONDS": "3600"}


def flags_for(args) -> list[str]:
    return [
        "--viewers", str(args.viewers), "--videos", "1", "--rate", str(args.rate),
        "--duration", str(args.duration), "--procs", str(args.procs),
        "--ramp", str(max(2.0, args.viewers / 1000)),
    ]  # fmt: skip


def run_nchan(args, path: Path) -> tuple[int, dict | None]:
    nchan = Nchan().start()
    try:
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "livehub_loadtest",
                "--url",
                nchan.url,
                "--target",
                "nchan",
                "--server-pid",
                str(nchan.pid),
                "--json",
                str(path),
                "--note",
                "nginx + nchan, one worker (scripts/nchan/run)",
                *flags_for(args),
            ]
        )
    finally:
        nchan.stop()
    if not path.exists():
        return code or 1, None
    rep = json.loads(path.read_text())
    rep["versions"] = versions()
    return code, rep


def summarize(peer: str, rep: dict) -> dict:
    srv = rep["server"]
    writes = rep["comment_reads"]
    delivered = rep["deliveries"]
    window_s = rep["phases_s"]["posting_s"] + rep["phases_s"]["drain_s"]
    out = {
        "peer": peer,
        "viewers": rep["config"]["viewers"],
        "rate": rep["config"]["rate"],
        "deliveries": delivered,
        "comment_reads": writes,
        "comments_per_read": rep["comments_per_read"],
        "writes_per_s": round(writes / window_s, 1),
        "server_cpu_s": srv["cpu_s"],
        "server_core_fraction": srv["cpu_core_fraction"],
        "cpu_us_per_write": round(srv["cpu_s"] * 1e6 / writes, 2) if writes else None,
        "delivery_p99_ms": rep["delivery_latency"]["p99_ms"],
        "audit_clean": rep["ok"],
    }
    if peer == "livehub":
        pg = rep.get("postgres") or {}
        out["postgres_cpu_s"] = pg.get("cpu_s")
        metric = rep.get("livehub_comments_delivered_metric") or {}
        out["metrics_delivered"] = next(iter(metric.values()), None)
        out["target_us"] = TARGET_US
        out["ok"] = bool(rep["ok"] and out["cpu_us_per_write"] is not None
                         and out["cpu_us_per_write"] <= TARGET_US)  # fmt: skip
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", choices=["livehub", "nchan", "both"], default="livehub")
    p.add_argument("--viewers", type=int, default=2000)
    p.add_argument("--rate", type=float, default=2.0, help="comments/s (one write each)")
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--procs", type=int, default=2, help="load tester processes")
    p.add_argument("--workers", type=int, default=1, help="Hypercorn workers (livehub)")
    p.add_argument("--out", type=Path, default=Path(".livehub/bench"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    peers = ["nchan", "livehub"] if args.peer == "both" else [args.peer]
    status, rows = 0, []
    for peer in peers:
        path = args.out / f"w-{peer}.json"
        print(f"== scenario w against {peer} ==", flush=True)
        if peer == "nchan":
            code, rep = run_nchan(args, path)
        else:
            code, rep = run(
                flags_for(args), path, workers=args.workers, env=W_ENV,
                log_dir=args.out / "logs",
                notes=("scenario w: coalescing off, heartbeat out of the run",),
            )  # fmt: skip
        if rep is None:
            status = 1
            continue
        rep["w"] = summarize(peer, rep)
        path.write_text(json.dumps(rep, indent=2) + "\n")
        rows.append(rep["w"])
        status |= code
    print("\npeer      writes   per read  writes/s  server CPU s  us/write  p99 ms  audit")
    for w in rows:
        print(
            f"{w['peer']:<8} {w['comment_reads']:>7} {w['comments_per_read']!s:>10}"
            f" {w['writes_per_s']:>9} {w['server_cpu_s']:>13} {w['cpu_us_per_write']!s:>9}"
            f" {w['delivery_p99_ms']!s:>7}  {'clean' if w['audit_clean'] else 'FAILED'}"
        )
        if w["peer"] == "livehub":
            print(
                f"livehub target <= {TARGET_US:g} us/write: {'PASS' if w['ok'] else 'FAIL'}"
                f"  (/metrics delivered {w['metrics_delivered']}, Postgres CPU "
                f"{w['postgres_cpu_s']} s)"
            )
    return status


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
