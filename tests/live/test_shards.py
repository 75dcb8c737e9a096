"""Two livehub processes over two Postgres clusters (LIVEHUB_DATABASE_URLS): each
video lives on its shard only, viewers get every comment gapless on either node, a
shard that stops takes down only its own videos, and when it returns its viewers
resume gaplessly."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
import trio

from ..support import ROOT, create_database, moderator, psql, server_env, start_livehub
from .shardkit import ResumingViewer, assert_gapless, post, videos_on

pytestmark = pytest.mark.slow


def start_nodes(urls: str, count: int = 2):
    return [
        start_livehub(
            urls.split()[0],
            LIVEHUB_DATABASE_URLS=urls,
            LIVEHUB_RESYNC_INTERVAL_SECONDS="1",
            LIVEHUB_DB_COMMAND_TIMEOUT_SECONDS="2",
        )
        for _ in range(count)
    ]


@pytest.fixture
def two_shards(dsn, dsn2):
    urls = f"{dsn} {dsn2}"
    nodes = []
    try:
        nodes = start_nodes(urls)
        yield urls, nodes
    finally:
        for node in nodes:
            node.stop()


def test_livehub_migrate_migrates_every_shard(dsn, dsn2, pg_cluster, pg_cluster2):
    env = server_env(dsn, LIVEHUB_DATABASE_URLS=f"{dsn} {dsn2}")
    out = subprocess.run(
        [sys.executable, "-m", "livehub", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "shard 0: applied: 0001_comments.sql" in out.stdout
    assert "shard 1: applied: 0001_comments.sql" in out.stdout
    for cluster, d in ((pg_cluster, dsn), (pg_cluster2, dsn2)):
        assert psql(cluster, d, "SELECT count(*) > 0 FROM schema_migrations") == "t"


async def test_each_video_lives_on_its_shard_and_streams_gapless_on_both_nodes(
    two_shards, dsn, dsn2, pg_cluster, pg_cluster2
):
    _, (a, b) = two_shards
    (v0,), (v1,) = videos_on(0, 2), videos_on(1, 2)
    viewers = [ResumingViewer(n.url, v) for v in (v0, v1) for n in (a, b)]
    acked: dict[str, dict[int, str]] = {v0: {}, v1: {}}
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as c:
            for viewer in viewers:
                nursery.start_soon(viewer.run)
                await viewer.connected.wait()
            for i in range(20):
                for video in (v0, v1):
                    r = await post(c, (a, b)[i % 2].url, video, f"{video} {i}")
                    assert r.status_code == 201, r.text
                    acked[video][r.json()["seq"]] = r.json()["message"]
            r = await c.delete(f"{b.url}/comments/{v1}/3", headers=moderator())
            assert r.status_code == 204, r.text
            for viewer in viewers:
                await viewer.wait_for(21 if viewer.video == v1 else 20, within=20)
            nursery.cancel_scope.cancel()
    for viewer in viewers:
        assert_gapless(viewer, acked[viewer.video])
    # Everything about a video is on its own shard, nothing on the other.
    for cluster, d, mine, other in ((pg_cluster, dsn, v0, v1), (pg_cluster2, dsn2, v1, v0)):
        for table in ("videos", "comments", "viewer_counts"):
            sql = f"SELECT count(*) FROM {table} WHERE video_id = '{other}'"
            assert psql(cluster, d, sql) == "0"
        head = "21" if mine == v1 else "20"  # the deletion took v1's seq 21
        assert psql(cluster, d, f"SELECT last_seq FROM videos WHERE video_id = '{mine}'") == head
    sql = f"SELECT action FROM moderation_log WHERE video_id = '{v1}'"
    assert psql(pg_cluster2, dsn2, sql) == "delete"
    assert psql(pg_cluster, dsn, "SELECT count(*) FROM moderation_log") == "0"
    async with httpx.AsyncClient(timeout=10) as c:
        ready = await c.get(f"{a.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "shards": [{"shard": 0, "ok": True}, {"shard": 1, "ok": True}],
    }


async def test_a_shard_that_stops_takes_down_only_its_videos_and_its_viewers_resume(
    dsn, own_cluster
):
    dsn_down = create_database(own_cluster)
    urls = f"{dsn} {dsn_down}"
    nodes = start_nodes(urls)
    try:
        await _shard_down_and_back(nodes, own_cluster)
    finally:
        for node in nodes:
            node.stop()


async def _shard_down_and_back(nodes, cluster) -> None:
    a, b = nodes
    (up,), (down,) = videos_on(0, 2), videos_on(1, 2)
    viewers = [ResumingViewer(n.url, v) for v in (up, down) for n in (a, b)]
    acked: dict[str, dict[int, str]] = {up: {}, down: {}}

    async def post_ok(c, node, video, message):
        r = await post(c, node.url, video, message)
        assert r.status_code == 201, r.text
        acked[video][r.json()["seq"]] = message

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as c:
            for viewer in viewers:
                nursery.start_soon(viewer.run)
                await viewer.connected.wait()
            for i in range(5):
                for video in (up, down):
                    await post_ok(c, nodes[i % 2], video, f"{video} before {i}")
            cluster.stop()
            # The stopped shard's videos: 503, fast, on both nodes.
            for node in nodes:
                for i in range(3):
                    started = time.monotonic()
                    r = await post(c, node.url, down, f"refused {i}")
                    assert r.status_code == 503, r.text
                    assert r.json()["error"]["code"] == "store_unavailable"
                    assert time.monotonic() - started < 1.5
            # The other shard's videos keep working on both nodes, viewers included.
            for i in range(10):
                await post_ok(c, nodes[i % 2], up, f"{up} during {i}")
            for viewer in viewers[:2]:
                await viewer.wait_for(15, within=10)
            ready = await c.get(f"{a.url}/readyz")
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "degraded",
                "shards": [{"shard": 0, "ok": True}, {"shard": 1, "ok": False}],
            }
            cluster.start(port=cluster.port)
            # Back: posts to its videos are taken again, viewers resume gaplessly.
            with trio.fail_after(30):
                while True:
                    r = await post(c, a.url, down, f"{down} after 0")
                    if r.status_code == 201:
                        acked[down][r.json()["seq"]] = f"{down} after 0"
                        break
                    assert r.status_code == 503, r.text
                    await trio.sleep(0.2)
            for i in range(1, 6):
                await post_ok(c, nodes[i % 2], down, f"{down} after {i}")
            for viewer in viewers[2:]:
                await viewer.wait_for(11, within=20)
            nursery.cancel_scope.cancel()
    for viewer in viewers:
        assert_gapless(viewer, acked[viewer.video])


async def test_a_comment_whose_wake_up_never_came_reaches_viewers_on_either_shard(
    two_shards, dsn, dsn2, pg_cluster, pg_cluster2
):
    """Written straight into each shard (no NOTIFY at all): the registry's periodic
    counter check, per shard, still delivers it."""
    _, (a, b) = two_shards
    (v0,), (v1,) = videos_on(0, 2), videos_on(1, 2)
    viewers = [ResumingViewer(n.url, v) for v in (v0, v1) for n in (a, b)]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as c:
            for viewer in viewers:
                nursery.start_soon(viewer.run)
                await viewer.connected.wait()
            for video in (v0, v1):
                r = await post(c, a.url, video, f"{video} posted")
                assert r.status_code == 201, r.text
            for cluster, d, video in ((pg_cluster, dsn, v0), (pg_cluster2, dsn2, v1)):
                psql(
                    cluster,
                    d,
                    "WITH bump AS (UPDATE videos SET last_seq = last_seq + 1"
                    f" WHERE video_id = '{video}' RETURNING last_seq)"
                    " INSERT INTO comments (video_id, seq, user_id, message)"
                    f" SELECT '{video}', last_seq, 'ghost', 'unannounced' FROM bump",
                )
            for viewer in viewers:
                await viewer.wait_for(2, within=10)
            nursery.cancel_scope.cancel()
    for viewer in viewers:
        assert viewer.seqs == [1, 2]
        assert viewer.messages[2] == "unannounced"
