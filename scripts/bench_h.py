"""Scenario h: the NOTIFY ceiling of the bus (Postgres LISTEN/NOTIFY, no livehub).

    .venv/bin/python scripts/bench_h.py [--listeners 1,2,4] [--rates 1000,2000,...,max]
                                        [--step 3] [--out DIR]

How many wake-ups per second Postgres LISTEN/NOTIFY carries before it falls behind.
A throwaway durable Postgres (fsync on; a NOTIFY-only transaction writes no WAL) on
127.0.0.1; L listener processes (one LISTEN connection each, like L livehub nodes,
asyncpg on asyncio) on one channel; senders are pgbench clients (C, so the sender is not
the limit) running autocommit ``SELECT pg_notify('bench_h', <clock_timestamp in us>)``
at a fixed offered rate (``pgbench -R``, Poisson arrivals) for ``--step`` seconds, then
unthrottled ("max"). Per step: sent/s, delivered/s at the slowest listener within the
step, lag (listener receive time - server clock at pg_notify) p50/p99/max, and CPU of
Postgres, pgbench and each listener. A step "falls behind" when a listener got < 95 % of
the sent wake-ups within the step (+100 ms) or lag p99 > 100 ms; the ceiling written down
is the highest delivered rate of a step that kept up. Writes DIR/h-postgres.json.
Every process it starts is stopped by PID (listeners by their handle, pgbench waited on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

from livehub_loadtest.procstat import loadavg, tree_cpu_seconds
from livehub_loadtest.stack import ThrowawayPostgres, versions

CHANNEL = "bench_h"
SCRIPT = (
    f"SELECT pg_notify('{CHANNEL}', "
    "(extract(epoch from clock_timestamp()) * 1000000)::bigint::text);\n"
)
KEEP_UP_SHARE = 0.95
LAG_LIMIT_MS = 100.0
GRACE_S = 0.1  # a wake-up received this long after the step still counts as in time
DRAIN_S = 3.0  # then wait at most this long for stragglers (lag is still recorded)
BUSY = 0.85


# -- listener process -------------------------------------------------------------------


def listener_main(dsn: str, conn) -> None:
    asyncio.run(_listen(dsn, conn))


async def _listen(dsn: str, ctl) -> None:
    import asyncpg

    lags = array("q")  # microseconds
    recv_at = array("d")  # time.time() of each receive
    db = await asyncpg.connect(dsn)

    def on_notify(_conn, _pid, _channel, payload) -> None:
        now = time.time()
        recv_at.append(now)
        lags.append(int(now * 1e6) - int(payload))

    await db.add_listener(CHANNEL, on_notify)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_command() -> None:
        cmd = ctl.recv()
        if cmd[0] == "reset":
            del lags[:]
            del recv_at[:]
            ctl.send(("cpu", _self_cpu()))
        elif cmd[0] == "report":
            _, t0, t1 = cmd
            in_time = sum(1 for t in recv_at if t0 <= t <= t1 + GRACE_S)
            ctl.send(("report", len(lags), in_time, lags.tobytes(), _self_cpu()))
        elif cmd[0] == "stop":
            done.set_result(None)

    loop.add_reader(ctl.fileno(), on_command)
    ctl.send(("ready",))
    try:
        await done
    finally:
        loop.remove_reader(ctl.fileno())
        await db.close()


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- coordinator --------------------------------------------------------------------------


def pct(sorted_vals: list[int], q: float) -> float | None:
    if not sorted_vals:
        return None
    i = max(0, min(len(sorted_vals) - 1, round(q / 100 * len(sorted_vals) + 0.5) - 1))
    return round(sorted_vals[i] / 1000, 2)


def run_pgbench(pg: ThrowawayPostgres, script: Path, rate: int | None, seconds: float):
    cmd = [
        str(pg.bindir / "pgbench"),
        "-n",
        "-M",
        "prepared",
        "-c",
        "8",
        "-j",
        "2",
        "-T",
        str(int(seconds)),
        "-f",
        str(script),
        "-h",
        "127.0.0.1",
        "-p",
        str(pg.cluster.port),
        "-U",
        "postgres",
        "postgres",
    ]
    if rate is not None:
        cmd[1:1] = ["-R", str(rate)]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    t1 = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{out}")
    sent = 0
    for line in out.splitlines():
        if "actually processed" in line:
            sent = int(line.split(":")[1].split("/")[0])
    return sent, t0, t1, usage.ru_utime + usage.ru_stime, out


def run_step(pg, listeners, script, rate, seconds):
    for _, c in listeners:
        c.send(("reset",))
    cpu0 = [c.recv()[1] for _, c in listeners]
    pg_cpu0 = tree_cpu_seconds(pg.pids())
    sent, t0, t1, bench_cpu, _ = run_pgbench(pg, script, rate, seconds)
    pg_cpu = tree_cpu_seconds(pg.pids()) - pg_cpu0
    # let stragglers arrive (bounded), so lag includes the backlog of a slow step
    deadline = time.time() + DRAIN_S
    reports = []
    while True:
        reports = []
        for _, c in listeners:
            c.send(("report", t0, t1))
            reports.append(c.recv())
        if all(r[1] >= sent for r in reports) or time.time() > deadline:
            break
        time.sleep(0.1)
    window = t1 - t0
    per = []
    all_lags: list[int] = []
    for (_, total, in_time, raw, cpu1), c0 in zip(reports, cpu0, strict=True):
        lags = array("q")
        lags.frombytes(raw)
        all_lags.extend(lags)
        per.append(
            {
                "received": total,
                "in_time": in_time,
                "delivered_per_s": round(in_time / window, 1),
                "cpu_core_fraction": round((cpu1 - c0) / window, 3),
            }
        )
    all_lags.sort()
    slowest = min(p["in_time"] for p in per)
    p99 = pct(all_lags, 99)
    kept_up = sent > 0 and slowest >= KEEP_UP_SHARE * sent and (p99 or 0) <= LAG_LIMIT_MS
    return {
        "offered_per_s": rate if rate is not None else "max",
        "sent": sent,
        "sent_per_s": round(sent / window, 1),
        "delivered_per_s_slowest_listener": round(slowest / window, 1),
        "wakeups_delivered_per_s_all_listeners": round(sum(p["in_time"] for p in per) / window, 1),
        "lag_ms": {"p50": pct(all_lags, 50), "p99": pct(all_lags, 99), "max": pct(all_lags, 100)},
        "kept_up": kept_up,
        "postgres_cpu_core_fraction": round(pg_cpu / window, 3),
        "pgbench_cpu_core_fraction": round(bench_cpu / window, 3),
        "listeners": per,
        "listener_saturated": any(p["cpu_core_fraction"] >= BUSY for p in per),
        "window_s": round(window, 3),
    }


def start_listeners(n: int, dsn: str):
    ctx = multiprocessing.get_context("spawn")
    out = []
    for _ in range(n):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=listener_main, args=(dsn, child), daemon=True)
        proc.start()
        out.append((proc, parent))
    for _, c in out:
        if not c.poll(30):
            raise RuntimeError("listener did not start")
        c.recv()
    return out


def stop_listeners(listeners) -> None:
    for _proc, c in listeners:
        try:
            c.send(("stop",))
        except OSError:
            pass
    for proc, _ in listeners:
        proc.join(5)
        if proc.is_alive():
            proc.kill()  # by its own handle
            proc.join(2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listeners", default="1,2,4", help="LISTEN connections (nodes), comma list")
    p.add_argument("--rates", default="1000,2000,4000,8000,12000,16000,24000,max")
    p.add_argument("--step", type=float, default=3.0, help="seconds per offered rate")
    p.add_argument("--out", type=Path, default=Path(".livehub/bench"))
    p.add_argument("--peer", default="postgres", help="ignored: Postgres only")
    p.add_argument("--workers", default=None, help="ignored")
    p.add_argument("--duration", type=float, default=None, help="alias of --step")
    args = p.parse_args()
    step = args.duration or args.step
    args.out.mkdir(parents=True, exist_ok=True)
    listener_counts = [int(x) for x in args.listeners.split(",")]
    rates = [None if r == "max" else int(r) for r in args.rates.split(",")]
    load_start = loadavg()
    fd, script_name = tempfile.mkstemp(prefix="bench-h-", suffix=".sql")
    os.write(fd, SCRIPT.encode())
    os.close(fd)
    script = Path(script_name)
    pg = ThrowawayPostgres(durable=True)
    results = []
    try:
        pg.start()
        fsync = pg.fsync()
        print(f"h: Postgres {pg.psql('SHOW server_version')} fsync={fsync}; step {step:g} s")
        for n in listener_counts:
            listeners = start_listeners(n, pg.dsn())
            try:
                for rate in rates:
                    r = run_step(pg, listeners, script, rate, step)
                    r["listeners_n"] = n
                    results.append(r)
                    print(
                        f"  L={n} offered {r['offered_per_s']!s:>6}  sent {r['sent_per_s']:>8}/s"
                        f"  delivered {r['delivered_per_s_slowest_listener']:>8}/s"
                        f"  lag p50 {r['lag_ms']['p50']} p99 {r['lag_ms']['p99']} ms"
                        f"  pg {r['postgres_cpu_core_fraction']} core"
                        f"  {'ok' if r['kept_up'] else 'BEHIND'}"
                        + ("  (a listener saturated)" if r["listener_saturated"] else ""),
                        flush=True,
                    )
            finally:
                stop_listeners(listeners)
    finally:
        pg.stop()
        script.unlink(missing_ok=True)

    ceilings = {}
    for n in listener_counts:
        steps = [r for r in results if r["listeners_n"] == n]
        ok = [r for r in steps if r["kept_up"]]
        behind = [r for r in steps if not r["kept_up"]]
        ceilings[str(n)] = {
            "max_kept_up_per_s": max(
                (r["delivered_per_s_slowest_listener"] for r in ok), default=0
            ),
            "first_behind_offered": behind[0]["offered_per_s"] if behind else None,
            "max_sent_per_s": max(r["sent_per_s"] for r in steps),
        }
    report = {
        "scenario": "h",
        "what": "autocommit SELECT pg_notify from 8 pgbench clients, L asyncpg listeners",
        "postgres_fsync": fsync,
        "step_s": step,
        "keep_up_rule": f">= {KEEP_UP_SHARE:.0%} delivered within the step and lag p99 <= "
        f"{LAG_LIMIT_MS:g} ms",
        "ceilings": ceilings,
        "steps": results,
        "machine": {"nproc": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": loadavg()},
        "versions": versions(),
    }
    path = args.out / "h-postgres.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(
        "\nlisteners  kept up to (wake-ups/s per listener)  first offered rate behind  max sent/s"
    )
    for n, c in ceilings.items():
        print(
            f"{n:>9}  {c['max_kept_up_per_s']:>36}  {c['first_behind_offered']!s:>25}"
            f"  {c['max_sent_per_s']:>10}"
        )
    print(f"json: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
