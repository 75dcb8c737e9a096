"""Scenario f: history 1,000,000 comments deep, keyset (livehub's cursor) vs OFFSET.

    .venv/bin/python scripts/bench_f.py [--comments 1000000] [--repeats 40] [--out DIR]

Starts a throwaway durable Postgres and one livehub process on 127.0.0.1, inserts
``--comments`` comments into one video straight in SQL (INSERT ... SELECT
generate_series, then ANALYZE), then times, each ``--repeats`` times after a warm-up:

- GET /comments/<id>?pagesize=50                 the newest page (HTTP, keep-alive)
- GET /comments/<id>?pagesize=50&cursor=51       the oldest page, ~1,000,000 deep (HTTP)
- the same deep page by keyset in SQL            (asyncpg, what the cursor runs)
- the same deep page by OFFSET in SQL            (asyncpg; livehub has no OFFSET anywhere)

and reports medians and the ratios: deep/newest (target <= 2) and OFFSET/keyset
(target >= 100; both the HTTP keyset, which includes HTTP, and the SQL keyset).
Writes DIR/f-livehub.json. Everything it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from livehub_loadtest.procstat import loadavg
from livehub_loadtest.stack import livehub_stack, versions

VIDEO = "bench-f-history"
PAGE = 50
KEYSET_SQL = (
    "SELECT seq, user_id, message, created_at FROM comments "
    "WHERE video_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
)
OFFSET_SQL = (
    "SELECT seq, user_id, message, created_at FROM comments "
    "WHERE video_id = $1 ORDER BY seq DESC OFFSET $2 LIMIT $3"
)


def fill(pg, n: int) -> float:
    t0 = time.monotonic()
    pg.psql(
        f"""
        INSERT INTO videos (video_id, last_seq) VALUES ('{VIDEO}', {n});
        INSERT INTO comments (video_id, seq, user_id, message, created_at)
        SELECT '{VIDEO}', g, 'user-' || (g % 5000),
               'comment ' || g || ' ' || repeat('x', 40 + g % 60),
               now() - make_interval(secs => ({n} - g) / 100.0)
        FROM generate_series(1, {n}) AS g;
        ANALYZE comments;
        """
    )
    return time.monotonic() - t0


def time_http(client: httpx.Client, url: str, repeats: int, warmup: int = 3):
    times, body = [], None
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        resp = client.get(url)
        dt = time.perf_counter() - t0
        resp.raise_for_status()
        body = resp.json()
        if i >= warmup:
            times.append(dt * 1000)
    return times, body


async def time_sql(dsn: str, repeats: int, deep_cursor: int, offset: int):
    conn = await asyncpg.connect(dsn)
    try:

        async def run(sql: str, arg: int, n: int, warmup: int = 2):
            times, rows = [], None
            for i in range(warmup + n):
                t0 = time.perf_counter()
                rows = await conn.fetch(sql, VIDEO, arg, PAGE)
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1000)
            return times, [r["seq"] for r in rows]

        keyset = await run(KEYSET_SQL, deep_cursor, repeats)
        # OFFSET reads and discards ~1M index entries each time: fewer repeats
        off = await run(OFFSET_SQL, offset, max(5, repeats // 4), warmup=1)
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + OFFSET_SQL, VIDEO, offset, PAGE)
        kplan = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + KEYSET_SQL, VIDEO, deep_cursor, PAGE
        )
        return keyset, off, [r[0] for r in kplan], [r[0] for r in plan]
    finally:
        await conn.close()


def med(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--comments", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--out", type=Path, default=Path(".livehub/bench"))
    p.add_argument("--peer", default="livehub", help="ignored: nchan has no history")
    p.add_argument("--workers", type=int, default=1, help="ignored: one process")
    p.add_argument("--duration", default=None, help="ignored")
    args = p.parse_args()
    if args.peer == "nchan":
        print("f: nchan has no history API; measuring livehub + Postgres only")
    args.out.mkdir(parents=True, exist_ok=True)
    n = args.comments
    deep_cursor = PAGE + 1  # the page of seqs 50..1: n - 50 rows newer than it
    offset = n - PAGE
    load_start = loadavg()
    with livehub_stack(log_dir=args.out / "logs", name="livehub-f") as (pg, nodes):
        fsync = pg.fsync()
        print(f"f: Postgres fsync={fsync}; inserting {n:,} comments into one video ...")
        fill_s = fill(pg, n)
        print(f"f: inserted in {fill_s:.1f} s")
        base = f"{nodes[0].url}/comments/{VIDEO}?pagesize={PAGE}"
        with httpx.Client(timeout=30) as client:
            newest, newest_body = time_http(client, base, args.repeats)
            deep, deep_body = time_http(client, f"{base}&cursor={deep_cursor}", args.repeats)
        keyset_sql, offset_sql, keyset_plan, offset_plan = asyncio.run(
            time_sql(pg.dsn(), args.repeats, deep_cursor, offset)
        )
    newest_seqs = [c["seq"] for c in newest_body["comments"]]
    deep_seqs = [c["seq"] for c in deep_body["comments"]]
    assert newest_seqs == list(range(n, n - PAGE, -1)), newest_seqs[:3]
    assert deep_seqs == list(range(PAGE, 0, -1)), deep_seqs[:3]
    assert keyset_sql[1] == offset_sql[1] == deep_seqs, "keyset and OFFSET pages differ"

    m = {
        "http_newest_ms": med(newest),
        "http_deep_keyset_ms": med(deep),
        "sql_deep_keyset_ms": med(keyset_sql[0]),
        "sql_deep_offset_ms": med(offset_sql[0]),
    }
    ratios = {
        "deep_over_newest_http": round(m["http_deep_keyset_ms"] / m["http_newest_ms"], 2),
        "offset_over_keyset_http": round(m["sql_deep_offset_ms"] / m["http_deep_keyset_ms"], 1),
        "offset_over_keyset_sql": round(m["sql_deep_offset_ms"] / m["sql_deep_keyset_ms"], 1),
    }
    targets = {
        "deep_over_newest_http": "<= 2",
        "offset_over_keyset_http": ">= 100",
    }
    ok = ratios["deep_over_newest_http"] <= 2 and ratios["offset_over_keyset_http"] >= 100
    report = {
        "scenario": "f",
        "comments": n,
        "page_size": PAGE,
        "deep_page": f"cursor={deep_cursor} (seqs {PAGE}..1), OFFSET {offset}",
        "repeats": {
            "http": args.repeats,
            "sql_keyset": args.repeats,
            "sql_offset": len(offset_sql[0]),
        },
        "postgres_fsync": fsync,
        "fill_s": round(fill_s, 1),
        "median_ms": m,
        "p90_ms": {
            "http_newest_ms": round(statistics.quantiles(newest, n=10)[-1], 3),
            "http_deep_keyset_ms": round(statistics.quantiles(deep, n=10)[-1], 3),
        },
        "ratios": ratios,
        "targets": targets,
        "ok": ok,
        "explain_keyset": keyset_plan,
        "explain_offset": offset_plan,
        "machine": {"loadavg_start": load_start, "loadavg_end": loadavg()},
        "versions": versions(),
        "raw_ms": {
            "http_newest": newest,
            "http_deep_keyset": deep,
            "sql_deep_keyset": keyset_sql[0],
            "sql_deep_offset": offset_sql[0],
        },
    }
    path = args.out / "f-livehub.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    rows = [
        ("comments in the video", f"{n:,} (inserted in {fill_s:.1f} s, fsync={fsync})"),
        ("GET newest page (HTTP)", f"{m['http_newest_ms']:.2f} ms median"),
        ("GET page 1M deep, cursor (HTTP)", f"{m['http_deep_keyset_ms']:.2f} ms median"),
        ("same page, keyset (SQL)", f"{m['sql_deep_keyset_ms']:.3f} ms median"),
        ("same page, OFFSET (SQL)", f"{m['sql_deep_offset_ms']:.1f} ms median"),
        ("deep / newest (HTTP)", f"{ratios['deep_over_newest_http']}x  (target <= 2)"),
        ("OFFSET / keyset HTTP", f"{ratios['offset_over_keyset_http']}x  (target >= 100)"),
        ("OFFSET / keyset SQL", f"{ratios['offset_over_keyset_sql']}x"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    print("RESULT: " + ("PASS" if ok else "FAIL") + f"   json: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
