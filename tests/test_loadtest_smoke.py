"""A short run of the load tester against the real server: zero loss, latencies reported.

The server is ``python -m livehub serve`` on the test cluster (``start_livehub``), the load
tester runs as users run it (``python -m livehub_loadtest ... --json``), a few seconds with
few viewers, a fifth of them dropping and resuming with Last-Event-ID; then the same over
the WebSocket transport (``--transport ws``, resuming with ``?last_event_id=``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .support import ROOT, SECRET, start_livehub

SSE_LOAD = (20, 2, 20, 3)  # viewers, videos, comments/s, seconds
WS_LOAD = (10, 2, 10, 3)


@pytest.mark.parametrize(
    ("transport", "load", "delete_fraction"),
    [("sse", SSE_LOAD, 0.0), ("ws", WS_LOAD, 0.0), ("sse", SSE_LOAD, 0.25), ("ws", WS_LOAD, 0.25)],
    ids=["sse", "ws", "sse-deleting", "ws-deleting"],
)
def test_loadtest_smoke(dsn, tmp_path, transport, load, delete_fraction):
    """With ``delete_fraction`` a moderator deletes that share of the accepted comments
    while posting runs, and the audit still comes out clean."""
    viewers, videos, rate, duration_s = load
    server = start_livehub(dsn, LIVEHUB_POST_RATE_PER_SECOND="1000", LIVEHUB_POST_BURST="1000")
    out = tmp_path / "smoke.json"
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "livehub_loadtest",
                "--url",
                server.url,
                "--target",
                "livehub",
                "--transport",
                transport,
                "--viewers",
                str(viewers),
                "--videos",
                str(videos),
                "--rate",
                str(rate),
                "--duration",
                str(duration_s),
                "--settle",
                "0.3",
                "--drain",
                "5",
                "--resume-fraction",
                "0.2",
                "--resume-pause",
                "0.5",
                "--server-pid",
                str(server.proc.pid),
                "--deadline",
                "30",
                "--json",
                str(out),
                "--delete-fraction",
                str(delete_fraction),
            ],
            cwd=ROOT,
            env=dict(os.environ, LIVEHUB_JWT_SECRET=SECRET),
            capture_output=True,
            text=True,
            timeout=40,
        )
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr + server.log()[-3000:]
    rep = json.loads(out.read_text())
    audit, posts = rep["audit"], rep["posts"]

    assert rep["ok"] and rep["viewers_connected"] == viewers
    assert rep["config"]["transport"] == transport
    for key in ("missing", "duplicates", "unexpected", "order_regressions", "seq_gaps"):
        assert audit[key] == 0, (key, audit, rep["failed_viewers"])
    assert audit["seq_mismatch"] == 0 and audit["never_connected"] == 0
    assert audit["resumers"] == viewers // 5

    expected_posts = rate * duration_s
    assert posts["attempted"] == posts["accepted"] == expected_posts, posts
    assert posts["rejected_4xx"] == posts["rejected_5xx"] == posts["failed"] == 0
    deleted = rep["deletes"].get("deleted", 0)
    if delete_fraction:
        assert deleted == int(expected_posts * delete_fraction), rep["deletes"]
        assert rep["deletes"]["refused"] == rep["deletes"]["unknown"] == 0
        assert audit["deletions_missing"] == audit["deleted_text_resumed"] == 0
        # a viewer misses a deleted comment's text only by resuming past its deletion
        assert audit["expected"] == viewers * expected_posts // videos
        assert audit["received"] + audit["tombstones"] == audit["expected"], audit
    else:
        # every viewer saw every comment of its video (all connected before posting began)
        assert deleted == 0
        assert audit["received"] == audit["expected"] == viewers * expected_posts // videos

    lat = rep["delivery_latency"]
    assert lat["count"] > 0
    assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"] < 5000, lat
    assert rep["delivery_latency_resumed"]["count"] > 0
    post_lat = posts["latency"]
    assert 0 < post_lat["p50_ms"] <= post_lat["p99_ms"] < 5000, post_lat
    assert rep["server"]["cpu_s"] >= 0 and rep["server"]["rss_connected_kb"] > 0
