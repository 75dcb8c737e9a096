"""livehub under the load tester, on a throwaway durable Postgres: scripts/bench's livehub side.

    .venv/bin/python scripts/bench_livehub.py [--nodes N] [--workers N] [--env K=V]...
        [--log-dir DIR] [--fsync-off] --json OUT -- LOADTEST FLAGS...

Starts a fresh Postgres cluster (fsync on unless --fsync-off: that is what users run),
then N ``livehub serve`` processes (each with --workers W) on 127.0.0.1, waits for each
``/readyz``, runs ``python -m livehub_loadtest`` with ``--server-pid`` = the livehub
processes and ``--db-pid`` = the postmaster (all of Postgres is its process tree), so the
report holds "livehub CPU" and "Postgres CPU" apart, per delivered comment and per post.
Posts go to node 0; with several nodes the viewers are spread over all of them
(``--viewer-url``) and latency is reported per node. Everything is stopped by PID.
Exit code: the load tester's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from livehub_loadtest.stack import livehub_stack, versions

BENCH_ENV = {
    "LIVEHUB_POST_RATE_PER_SECOND": "1000000",
    "LIVEHUB_POST_BURST": "1000000",
    "LIVEHUB_MAX_STREAMS": "30000",
}


def run(
    loadtest_flags: list[str],
    json_path: Path,
    nodes: int = 1,
    workers: int = 1,
    env: dict[str, str] | None = None,
    durable: bool = True,
    log_dir: Path | None = None,
    notes: tuple[str, ...] = (),
    on_ready=None,
) -> tuple[int, dict | None]:
    """Start the stack, run the load tester once, stop everything; (exit code, report).

    ``on_ready(pg, nodes)`` runs after the servers are ready and may return extra
    loadtest flags; ``on_done(...)`` is not needed: callers read the JSON.
    """
    # The load tester's posters are a few users posting many times a second: lift the
    # per-user post limit and the stream cap (policies, not what is measured).
    env = {**BENCH_ENV, **(env or {})}
    with livehub_stack(nodes, workers, env, durable, log_dir) as (pg, started):
        fsync = pg.fsync()
        durability = "durable, as users run it" if fsync == "on" else "NOT durable"
        setup = (
            f"livehub: {nodes} process(es) x {workers} worker(s); Postgres: throwaway "
            f"cluster, fsync={fsync} ({durability})"
        )
        print(setup, flush=True)
        flags = ["--url", started[0].url, "--target", "livehub", "--json", str(json_path)]
        if nodes > 1:
            for node in started:
                flags += ["--viewer-url", node.url]
        for node in started:
            flags += ["--server-pid", str(node.pid)]
        for pid in pg.pids():
            flags += ["--db-pid", str(pid)]
        for note in (setup, *notes):
            flags += ["--note", note]
        for k, v in sorted((env or {}).items()):
            flags += ["--note", f"env {k}={v}"]
        if on_ready is not None:
            flags += on_ready(pg, started) or []
        child_env = dict(os.environ, LIVEHUB_JWT_SECRET=started[0].jwt_secret)
        code = subprocess.call(
            [sys.executable, "-m", "livehub_loadtest", *flags, *loadtest_flags], env=child_env
        )
        metrics = {node.url: node.metric("livehub_comments_delivered") for node in started}
    report = None
    if json_path.exists():
        report = json.loads(json_path.read_text())
        report["versions"] = versions()
        report["livehub_comments_delivered_metric"] = metrics
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    return code, report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=1, help="livehub processes on the one Postgres")
    p.add_argument("--workers", type=int, default=1, help="Hypercorn workers per process")
    p.add_argument("--env", action="append", default=[], help="K=V for the livehub processes")
    p.add_argument("--fsync-off", action="store_true", help="non-durable Postgres (not default)")
    p.add_argument("--log-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("loadtest", nargs=argparse.REMAINDER, help="-- then load tester flags")
    args = p.parse_args()
    flags = args.loadtest[1:] if args.loadtest[:1] == ["--"] else args.loadtest
    env = dict(kv.split("=", 1) for kv in args.env)
    code, _ = run(flags, args.json, args.nodes, args.workers, env, not args.fsync_off, args.log_dir)
    return code


if __name__ == "__main__":
    sys.exit(main())
