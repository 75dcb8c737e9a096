"""Turn the raw results into one report dict (for ``--json``) and a summary table."""

from __future__ import annotations

import os
from array import array
from dataclasses import asdict

from livehub_loadtest.config import LoadConfig
from livehub_loadtest.stats import summarize_us

BUSY_CORE_FRACTION = 0.85  # a load-test process above this share of a core is the bottleneck
LATE_WARN_MS = 100  # open-loop posts later than this mean the offered rate was not kept
RATE_LIMITED_WARN_FRACTION = 0.05  # 429s past this share of posts: not the load asked for
AUDIT_KEYS = (
    "missing",
    "duplicates",
    "unexpected",
    "order_regressions",
    "seq_gaps",
    "deletions_missing",
    "deleted_text_resumed",
)


def _merge_arrays(groups: list[dict], name: str) -> array:
    out = array("q")
    for g in groups:
        out.extend(g[name])
    return out


def _merge_audit(groups: list[dict]) -> dict:
    total: dict = {}
    for g in groups:
        for key, value in g["audit"].items():
            total[key] = total.get(key, 0) + value
    return total


def _server(pids, cfg: LoadConfig, samples: dict, delivered: int, posted: int, window_s: float):
    """CPU during posting + drain and RSS of the process trees at ``pids``."""
    if not pids or samples.get("idle") is None:
        return None
    idle, connected = samples["idle"], samples["connected"]
    start, end = samples["post_start"], samples["drained"]
    cpu = end.cpu_s - start.cpu_s
    return {
        "pids": list(pids),
        "cpu_s": round(cpu, 3),
        "cpu_core_fraction": round(cpu / window_s, 3) if window_s else None,
        "cpu_us_per_delivery": round(cpu * 1e6 / delivered, 2) if delivered else None,
        "cpu_us_per_post": round(cpu * 1e6 / posted, 2) if posted else None,
        "rss_idle_kb": idle.rss_kb,
        "rss_connected_kb": connected.rss_kb,
        "rss_end_kb": end.rss_kb,
        "kb_per_connection": (
            round((connected.rss_kb - idle.rss_kb) / cfg.viewers, 2) if cfg.viewers else None
        ),
        "samples": {k: asdict(v) for k, v in samples.items() if v is not None},
    }


def _loadtester(cfg: LoadConfig, raw: dict) -> dict:
    coord = raw["coordinator_cpu"]
    procs = [{"role": "coordinator" + (" + viewers" if cfg.procs <= 1 else ""), **coord}]
    if cfg.procs > 1:
        procs += [
            {"role": f"viewers[{i}]", "cpu_s": g["cpu_s"], "wall_s": g["wall_s"]}
            for i, g in enumerate(raw["groups"])
        ]
    for p in procs:
        p["core_fraction"] = round(p["cpu_s"] / p["wall_s"], 3) if p["wall_s"] else 0.0
    busy = [p["role"] for p in procs if p["core_fraction"] >= BUSY_CORE_FRACTION]
    return {"processes": procs, "saturated": busy}


def _total(parts: list[dict | None], delivered: int, posted: int) -> dict | None:
    """Server + Postgres CPU together, per delivered comment and per post."""
    parts = [p for p in parts if p]
    if len(parts) < 2:
        return None
    cpu = sum(p["cpu_s"] for p in parts)
    return {
        "cpu_s": round(cpu, 3),
        "cpu_us_per_delivery": round(cpu * 1e6 / delivered, 2) if delivered else None,
        "cpu_us_per_post": round(cpu * 1e6 / posted, 2) if posted else None,
    }


def _by_target(cfg: LoadConfig, groups: list[dict], name: str) -> dict | None:
    """Latency per viewer URL, when viewers were spread over several."""
    if len(cfg.viewer_targets) < 2:
        return None
    out = {}
    for i, (host, _, _) in enumerate(cfg.viewer_targets):
        merged = array("q")
        for g in groups:
            merged.extend(g[name][i])
        out[f"http://{host}"] = summarize_us(merged, (50, 90, 99))
    return out


def build_report(cfg: LoadConfig, raw: dict, notes: tuple[str, ...] = ()) -> dict:
    groups, log = raw["groups"], raw["posts"]
    audit = _merge_audit(groups)
    live = summarize_us(_merge_arrays(groups, "lat_live_us"), (50, 90, 99))
    resumed = summarize_us(_merge_arrays(groups, "lat_resumed_us"), (50, 90, 99))
    phases = raw["phases"]
    window = phases["posting_s"] + phases["drain_s"]
    status = dict(sorted(log.status.items()))
    posts = {
        "attempted": sum(status.values()) + log.failed + len(log.cut_key),
        "accepted": log.accepted,
        "rejected_4xx": sum(n for s, n in status.items() if 400 <= s < 500),
        "rejected_5xx": sum(n for s, n in status.items() if s >= 500),
        "failed": log.failed,
        "cut_in_flight": len(log.cut_key),
        "by_status": {str(k): v for k, v in status.items()},
        "accepted_per_s": round(log.accepted / phases["posting_s"], 1),
        "latency": summarize_us(log.post_lat_us, (50, 99)),
        "lateness": summarize_us(log.late_us, (50, 99)),
        "reconnects": log.reconnects,
        "errors": log.errors,
    }
    delivered = audit.get("received", 0)
    comment_reads = sum(g.get("comment_reads", 0) for g in groups)
    server = _server(cfg.server_pids, cfg, raw["server_samples"], delivered, log.accepted, window)
    postgres = _server(cfg.db_pids, cfg, raw["db_samples"], delivered, log.accepted, window)
    clean = all(
        audit.get(k, 0) == 0
        for k in (*AUDIT_KEYS, "seq_mismatch", "never_connected", "viewers_failed")
    )
    refused = (raw.get("deletes") or {}).get("refused", 0)
    ok = log.accepted > 0 and (cfg.viewers == 0 or clean) and not refused
    return {
        "config": {k: v for k, v in asdict(cfg).items() if k != "jwt_secret"},
        "notes": list(notes),
        "machine": {"nproc": os.cpu_count(), "loadavg": raw.get("loadavg")},
        "ok": ok,
        "viewers_connected": raw["viewers_connected"],
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
        "posts": posts,
        "deletes": raw.get("deletes", {}),
        "delivery_latency": live,
        "delivery_latency_resumed": resumed,
        "delivery_latency_by_viewer_url": _by_target(cfg, groups, "lat_live_by_target_us"),
        "deliveries": delivered,
        "deliveries_per_s": round(delivered / window, 1) if window else None,
        "comment_reads": comment_reads,
        "comments_per_read": round(delivered / comment_reads, 3) if comment_reads else None,
        "audit": audit,
        "failed_viewers": [v for g in groups for v in g["failed_viewers"]][:20],
        "server": server,
        "postgres": postgres,
        "server_plus_postgres": _total([server, postgres], delivered, log.accepted),
        "loadtester": _loadtester(cfg, raw),
    }


def _ms(summary: dict, key: str) -> str:
    value = summary.get(key)
    return "-" if value is None else f"{value:.1f}"


def format_table(rep: dict) -> str:
    cfg, posts, audit = rep["config"], rep["posts"], rep["audit"]
    lat, res = rep["delivery_latency"], rep["delivery_latency_resumed"]
    mode = "closed loop" if cfg["closed_loop"] else f"{cfg['rate']:g}/s open loop"
    rows = [
        ("target", f"{cfg['target']} {cfg['addr'][0]}:{cfg['addr'][1]}  run {cfg['run_id']}"),
        (
            "load",
            f"{cfg['viewers']} {cfg.get('transport', 'sse')} viewers x {cfg['videos']} "
            f"videos, {cfg['posters']} "
            f"posters, {mode}, {cfg['duration_s']:g} s, procs {cfg['procs']}",
        ),
        ("viewers connected", f"{rep['viewers_connected']}/{cfg['viewers']}"),
        (
            "posts",
            f"accepted {posts['accepted']} ({posts['accepted_per_s']}/s)  4xx "
            f"{posts['rejected_4xx']}  5xx {posts['rejected_5xx']}  failed {posts['failed']}"
            f"  cut in flight {posts['cut_in_flight']}",
        ),
        (
            "POST latency ms",
            f"p50 {_ms(posts['latency'], 'p50_ms')}  "
            f"p99 {_ms(posts['latency'], 'p99_ms')}  max {_ms(posts['latency'], 'max_ms')}",
        ),
        (
            "post lateness ms",
            f"p50 {_ms(posts['lateness'], 'p50_ms')}  "
            f"p99 {_ms(posts['lateness'], 'p99_ms')}  max {_ms(posts['lateness'], 'max_ms')}",
        ),
        (
            "delivery latency ms",
            f"p50 {_ms(lat, 'p50_ms')}  p90 {_ms(lat, 'p90_ms')}  "
            f"p99 {_ms(lat, 'p99_ms')}  max {_ms(lat, 'max_ms')}  (n={lat['count']})",
        ),
    ]
    for url, by in (rep.get("delivery_latency_by_viewer_url") or {}).items():
        rows.append(
            (
                f"  viewers at {url}",
                f"p50 {_ms(by, 'p50_ms')}  p90 {_ms(by, 'p90_ms')}  p99 {_ms(by, 'p99_ms')}"
                f"  max {_ms(by, 'max_ms')}  (n={by['count']})",
            )
        )
    if res["count"]:
        rows.append(
            (
                "  after resume ms",
                f"p50 {_ms(res, 'p50_ms')}  p99 {_ms(res, 'p99_ms')}"
                f"  max {_ms(res, 'max_ms')}  (n={res['count']})",
            )
        )
    rows.append(
        (
            "deliveries",
            f"{rep['deliveries']} ({rep['deliveries_per_s']}/s)  in {rep['comment_reads']} "
            f"reads ({rep['comments_per_read']} per read)",
        )
    )
    rows.append(
        (
            "audit",
            f"expected {audit.get('expected', 0)}  received "
            f"{audit.get('received', 0)}  "
            + "  ".join(f"{k} {audit.get(k, 0)}" for k in (*AUDIT_KEYS, "seq_mismatch")),
        )
    )
    deletes = rep.get("deletes") or {}
    if deletes.get("deleted") or deletes.get("unknown") or deletes.get("refused"):
        rows.append(
            (
                "deletions",
                f"deleted {deletes.get('deleted', 0)}  unanswered {deletes.get('unknown', 0)}"
                f"  refused {deletes.get('refused', 0)}  tombstones received "
                f"{audit.get('tombstones', 0)}",
            )
        )
    rows.append(
        (
            "viewers",
            f"failed {audit.get('viewers_failed', 0)}  never connected "
            f"{audit.get('never_connected', 0)}  late {audit.get('connected_late', 0)}  "
            f"resumers {audit.get('resumers', 0)}  unexpected disconnects "
            f"{audit.get('unexpected_disconnects', 0)}",
        )
    )
    srv, pg, tot = rep["server"], rep["postgres"], rep["server_plus_postgres"]
    if srv:
        rows.append(
            (
                "server CPU" if not pg else "livehub CPU",
                f"{srv['cpu_s']} s ({srv['cpu_core_fraction']} core)  "
                f"{srv['cpu_us_per_delivery']} us/delivery  {srv['cpu_us_per_post']} us/post",
            )
        )
        rows.append(
            (
                "server RSS KB",
                f"idle {srv['rss_idle_kb']}  connected "
                f"{srv['rss_connected_kb']}  end {srv['rss_end_kb']}  per connection "
                f"{srv['kb_per_connection']}",
            )
        )
    if pg:
        rows.append(
            (
                "Postgres CPU",
                f"{pg['cpu_s']} s ({pg['cpu_core_fraction']} core)  "
                f"{pg['cpu_us_per_delivery']} us/delivery  {pg['cpu_us_per_post']} us/post",
            )
        )
    if tot:
        rows.append(
            (
                "livehub + Postgres",
                f"{tot['cpu_s']} s  {tot['cpu_us_per_delivery']} us/delivery  "
                f"{tot['cpu_us_per_post']} us/post",
            )
        )
    la = (rep["machine"].get("loadavg") or {}).get("start")
    if la:
        rows.append(("machine", f"{rep['machine']['nproc']} cores, load avg at start {la}"))
    for note in rep["notes"]:
        rows.append(("note", note))
    for p in rep["loadtester"]["processes"]:
        rows.append(
            (f"loadtest {p['role']}", f"{p['cpu_s']:.2f} s CPU, {p['core_fraction']:.2f} core")
        )
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    for role in rep["loadtester"]["saturated"]:
        lines.append(
            f"WARNING: load tester process '{role}' used >= "
            f"{BUSY_CORE_FRACTION:.0%} of a core: it, not the server, may be the "
            "bottleneck; try --procs 2"
        )
    late = posts["lateness"].get("p99_ms")
    if not cfg["closed_loop"] and late is not None and late > LATE_WARN_MS:
        lines.append(
            f"WARNING: open-loop schedule slipped (lateness p99 {late:.0f} ms): the "
            "offered rate was not kept; raise --posters"
        )
    if any("status 429" in e for v in rep.get("failed_viewers", ()) for e in v["errors"]):
        lines.append(
            "WARNING: viewers were refused with 429 (too_many_streams): every load-test"
            " viewer comes from one address; start the server with"
            " LIVEHUB_MAX_STREAMS_PER_CLIENT=0"
        )
    limited = rate_limited_warning(posts)
    if limited:
        lines.append(limited)
    if posts["accepted"] == 0:
        lines.append("WARNING: no post was accepted: nothing was measured")
    elif posts["rejected_4xx"] or posts["rejected_5xx"] or posts["failed"]:
        lines.append(
            f"WARNING: posts not accepted: {posts['by_status']} failed "
            f"{posts['failed']}; e.g. {posts['errors'][:2]}"
        )
    if not rep["ok"]:
        lines.append("RESULT: FAIL (see audit)")
    elif limited:
        lines.append("RESULT: PASS (audit clean), but rate limited: see the WARNING above")
    else:
        lines.append("RESULT: PASS")
    return "\n".join(lines)


def rate_limited_warning(posts: dict) -> str | None:
    """A warning when many posts got 429: the server's per-user posting limit, not the
    offered load, set what was measured (each poster is one user)."""
    limited = posts["by_status"].get("429", 0)
    attempted = posts["attempted"] or 1
    if limited / attempted < RATE_LIMITED_WARN_FRACTION:
        return None
    return (
        f"WARNING: {limited} of {attempted} posts ({limited / attempted:.0%}) got 429"
        " rate_limited: the server's per-user limit throttled the load, so this is not"
        " a measurement of the offered rate. Start the server with a higher limit, e.g."
        " LIVEHUB_POST_RATE_PER_SECOND=100000 LIVEHUB_POST_BURST=100000 (defaults 5/s,"
        " burst 10), or use more --posters (one user each)"
    )
