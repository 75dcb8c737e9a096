"""Slow and stalled viewers never hold back others, never grow memory without bound,
and lose nothing: they catch up from Postgres, or are cut and resume exactly."""

from __future__ import annotations

import resource

import pytest
import trio

from livehub.core.model import Draft

from ..conftest import run_server
from ..support import SSEReader
from .rawsse import open_raw_stream, read_seqs, read_until

pytestmark = pytest.mark.slow
BIG = "x" * 1500


async def wait_until(predicate, interval: float = 0.05) -> None:
    """Poll a statistics() snapshot until ``predicate()``; callers bound it in time."""
    while not predicate():  # noqa: ASYNC110 - polling a snapshot, there is no event
        await trio.sleep(interval)


async def post_direct(srv, video: str, n: int, concurrency: int = 25) -> None:
    """Post through the node's registry (the POST handler's own path, minus HTTP)."""
    registry = srv.service.registry
    todo = iter(range(n))

    async def worker():
        for i in todo:
            await registry.post(video, Draft("poster", f"{i} {BIG}"))

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)


async def test_viewer_that_stops_reading_holds_back_nobody_and_gets_everything_later(settings):
    n = 500
    cfg = settings.replace(subscriber_queue_frames=8)
    async with run_server(cfg) as srv, srv.client() as client:
        slow = await open_raw_stream(srv.url, "v", rcvbuf=4096)
        buf = bytearray()
        with trio.fail_after(10):
            await read_until(slow, buf, b"retry:")
        with trio.fail_after(60):
            async with client.stream("GET", "/comments/v/stream") as response:
                fast = SSEReader(response)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(post_direct, srv, "v", n)
                    got = await fast.comments(n, within=50)
        assert [c["seq"] for c in got] == list(range(1, n + 1))
        actor = srv.service.registry.actor("v")
        assert actor.statistics().lagged_drops >= 1  # the slow viewer really fell behind
        with trio.fail_after(60):
            seqs = await read_seqs(slow, n)
        assert seqs == list(range(1, n + 1))
        await slow.aclose()


async def test_connection_that_never_reads_is_cut_after_the_stall_timeout(settings):
    cfg = settings.replace(stall_timeout_seconds=1.5, subscriber_queue_frames=8)
    async with run_server(cfg) as srv, srv.client() as client:
        # The app tunes its listeners at startup or on the first request: a connection
        # accepted before that (only possible with an in-process server) is not covered.
        assert (await client.get("/healthz")).status_code == 200
        stalled = await open_raw_stream(srv.url, "v", rcvbuf=4096)
        buf = bytearray()
        with trio.fail_after(10):
            await read_until(stalled, buf, b"retry:")
        registry = srv.service.registry
        assert registry.statistics().viewers == 1
        # Enough bytes to fill the kernel buffers on both sides, so Hypercorn's
        # (shielded) send blocks.
        with trio.fail_after(60):
            await post_direct(srv, "v", 4000)
        with trio.fail_after(20):
            await wait_until(lambda: registry.statistics().viewers == 0)
        # The server aborted the connection: the client sees a reset or EOF.
        with trio.fail_after(10):
            ended = False
            try:
                while await stalled.receive_some(1 << 20):
                    pass
                ended = True
            except trio.BrokenResourceError:
                ended = True
        assert ended


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 5000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))


def _task_count() -> int:
    def walk(task) -> int:
        return 1 + sum(walk(t) for n in task.child_nurseries for t in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())


async def test_1000_viewers_connect_and_disconnect_and_nothing_leaks(settings):
    # one client holding 1,000 streams: lift the per-client cap
    crowd = settings.replace(actor_idle_seconds=0.5, max_streams_per_client=0)
    async with run_server(crowd) as server:
        await _connect_and_disconnect_1000(server)


async def _connect_and_disconnect_1000(server):
    _raise_nofile()
    registry = server.service.registry
    await trio.sleep(0.2)
    baseline_tasks = _task_count()
    streams = []

    async def connect():
        s = await open_raw_stream(server.url, "crowd")
        b = bytearray()
        await read_until(s, b, b"retry:")
        streams.append(s)

    with trio.fail_after(60):
        for _ in range(10):
            async with trio.open_nursery() as nursery:
                for _ in range(100):
                    nursery.start_soon(connect)
    assert registry.statistics().viewers == 1000
    assert registry.actor("crowd").statistics().subscribers == 1000
    actor = registry.actor("crowd")
    for s in streams:
        await s.aclose()
    with trio.fail_after(20):
        await wait_until(lambda: registry.statistics().viewers == 0)
        assert actor.statistics().subscribers == 0
        # With no viewers the actor retires after actor_idle_seconds; then every task
        # this crowd caused (connections, requests, the actor) is gone.
        await wait_until(
            lambda: registry.statistics().actors == 0 and _task_count() == baseline_tasks
        )
