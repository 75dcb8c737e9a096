"""Graceful shutdown: SIGTERM a node (``livehub serve``) under viewers and posters.

What an operator checks: the process exits soon (not after graceful_timeout), every
post answered 201 is in Postgres, viewers are told to reconnect, resume on another
node with Last-Event-ID, and end up with every comment exactly once, in order.
"""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from ..support import auth, psql, start_livehub
from .viewer import ResumingViewer

pytestmark = pytest.mark.slow

DRAIN_SECONDS = 5
EXIT_BOUND_SECONDS = 8  # drain bound + process teardown; graceful_timeout is 10 s


async def poster(url: str, video: str, user: str, acked: list[dict], stop: trio.Event) -> None:
    """Post until ``stop``; keep what was acknowledged (201). Refusals are fine."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = await c.post(
                    f"/comments/{video}", json={"message": f"{user}-{i}"}, headers=auth(user)
                )
            except httpx.HTTPError:
                r = None  # the node went away mid-request: not acknowledged
            if r is not None and r.status_code == 201:
                acked.append(r.json())
            await trio.sleep(0.005)


async def test_sigterm_drains_posts_and_viewers_move_to_another_node(dsn, pg_cluster):
    env = {"LIVEHUB_DRAIN_TIMEOUT_SECONDS": str(DRAIN_SECONDS), "LIVEHUB_SSE_RETRY_MS": "200"}
    doomed = start_livehub(dsn, **env)
    survivor = start_livehub(dsn, **env)
    try:
        async with httpx.AsyncClient() as c:
            doomed_id = (await c.get(doomed.url + "/healthz")).headers["X-Livehub-Node"]
            survivor_id = (await c.get(survivor.url + "/healthz")).headers["X-Livehub-Node"]
        acked: list[dict] = []
        stop_posting = trio.Event()
        viewers = [ResumingViewer([doomed.url, survivor.url], "live") for _ in range(4)]
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for v in viewers:
                    await nursery.start(v.run)
                for k in range(3):
                    nursery.start_soon(poster, doomed.url, "live", f"d{k}", acked, stop_posting)
                nursery.start_soon(poster, survivor.url, "live", "s", acked, stop_posting)
                for v in viewers:
                    await v.wait_for(30)  # traffic is flowing through the doomed node

                started = time.monotonic()
                doomed.proc.send_signal(signal.SIGTERM)
                code = await trio.to_thread.run_sync(doomed.proc.wait, 30)
                took = time.monotonic() - started

                await trio.sleep(0.3)  # posts keep landing on the survivor meanwhile
                stop_posting.set()
                await trio.sleep(0.1)
                sql = "SELECT last_seq FROM videos WHERE video_id = 'live'"
                head = int(psql(pg_cluster, dsn, sql))
                for v in viewers:
                    await v.wait_for(head)
                nursery.cancel_scope.cancel()
    finally:
        doomed.stop()
        survivor.stop()

    assert code == 0, doomed.log()
    assert took < EXIT_BOUND_SECONDS, (took, doomed.log())
    # Every acknowledged post is stored, with the seq and text it was acknowledged with.
    rows = psql(pg_cluster, dsn, "SELECT seq || ' ' || message FROM comments ORDER BY seq")
    stored = rows.splitlines()
    assert len(stored) == head
    assert {f"{a['seq']} {a['message']}" for a in acked} <= set(stored)
    assert any(a["user_id"].startswith("d") for a in acked)
    for v in viewers:
        seqs = [c["seq"] for c in v.comments]
        assert seqs == list(range(1, head + 1))  # nothing lost, nothing twice, in order
        assert v.nodes[0] == doomed_id  # they were on the node that went away...
        assert v.nodes[-1] == survivor_id  # ...and resumed on the other one
    log = doomed.log()
    assert '"msg": "draining"' in log and '"msg": "drained"' in log, log


async def test_a_draining_node_refuses_new_streams_and_posts_with_503(dsn):
    node = start_livehub(dsn, LIVEHUB_DRAIN_TIMEOUT_SECONDS="3")
    try:
        with trio.fail_after(30):
            async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
                # One viewer and one slow-to-finish drain: the node stays up while the
                # viewer's stream is ended, so a new request can observe the drain.
                async with c.stream("GET", "/comments/x/stream") as s:
                    assert s.status_code == 200
                    node.proc.send_signal(signal.SIGTERM)
                    lines = []
                    async for line in s.aiter_lines():
                        lines.append(line)
                assert "retry: 1000" in lines  # the reconnect hint, then the end
                # The stream ended; the node may already be gone. If it still answers,
                # it refuses with 503 + Retry-After.
                try:
                    r = await c.post("/comments/x", json={"message": "late"}, headers=auth())
                    s = await c.get("/comments/x/stream")
                except httpx.HTTPError:
                    pass
                else:
                    for resp in (r, s):
                        assert resp.status_code == 503
                        assert resp.json()["error"]["code"] == "shutting_down"
                        assert "Retry-After" in resp.headers
                code = await trio.to_thread.run_sync(node.proc.wait, 20)
        assert code == 0
    finally:
        node.stop()


async def test_websocket_viewers_are_closed_with_service_restart(dsn):
    node = start_livehub(dsn, LIVEHUB_DRAIN_TIMEOUT_SECONDS="3")
    try:
        url = node.url.replace("http://", "ws://") + "/comments/wsd/ws"
        with trio.fail_after(20):
            async with open_websocket_url(url) as ws:
                assert json.loads(await ws.get_message())["type"] == "viewers"
                node.proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.get_message()
            assert closed.value.reason.code == 1012  # Service Restart: reconnect elsewhere
            assert await trio.to_thread.run_sync(node.proc.wait, 20) == 0
    finally:
        node.stop()
