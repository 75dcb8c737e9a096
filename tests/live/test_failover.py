"""Failover of one shard: its DSN lists a primary and its synchronous streaming
standby (``target_session_attrs=read-write``). The primary is killed (``pg_ctl stop
-m immediate``) while two nodes take posts, the standby is promoted (``pg_ctl
promote``): both nodes write to the new primary within seconds, no comment acked
with a 201 is lost, none is stored twice, and every viewer's stream stays gapless."""

from __future__ import annotations

import time

import httpx
import pytest
import trio

from ..support import _reap_when_gone, create_database, new_cluster, psql, remove_cluster
from .shardkit import ResumingViewer, post, videos_on
from .test_shards import start_nodes

pytestmark = pytest.mark.slow

RECONNECT_WITHIN_SECONDS = 15.0  # promote -> a 201 from every node


@pytest.fixture
def replicated():
    """A durable primary with one synchronous standby; yields (primary, standby,
    database name, failover DSN)."""
    import os

    # fsync stays off (a killed postmaster loses nothing the OS has), but commits wait
    # for the standby: synchronous_commit on, once synchronous_standby_names is set.
    primary = new_cluster(options=("synchronous_commit=on",))
    standby = None
    try:
        name = create_database(primary).rsplit("/", 1)[1]
        standby = primary.standby(primary.datadir.parent / "standby")
        _reap_when_gone(os.getpid(), standby)
        standby.start()
        psql(primary, primary.dsn(), "ALTER SYSTEM SET synchronous_standby_names = '*'")
        psql(primary, primary.dsn(), "SELECT pg_reload_conf()")
        deadline = time.monotonic() + 20
        while psql(primary, primary.dsn(), "SELECT sync_state FROM pg_stat_replication") != "sync":
            assert time.monotonic() < deadline, "the standby never became synchronous"
            time.sleep(0.1)
        dsn = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{name}"
            "?target_session_attrs=read-write"
        )
        yield primary, standby, name, dsn
    finally:
        if standby is not None:
            standby.stop("immediate")
        remove_cluster(primary)


async def test_killed_primary_promoted_standby_loses_nothing_acked_and_streams_stay_gapless(
    dsn, replicated
):
    primary, standby, name, failover_dsn = replicated
    nodes = start_nodes(f"{dsn} {failover_dsn}")
    try:
        await _fail_over(nodes, primary, standby, standby.dsn(name))
    finally:
        for node in nodes:
            node.stop()


async def _fail_over(nodes, primary, standby, new_primary: str) -> None:
    (other,), (hot,) = videos_on(0, 2), videos_on(1, 2)
    viewers = [ResumingViewer(n.url, hot) for n in nodes for _ in range(2)]
    acked: dict[int, str] = {}
    refused = 0
    promoted_at: float | None = None
    back_at: dict[int, float] = {}  # node -> first 201 after promotion
    stop = trio.Event()
    all_back = trio.Event()

    async def writer(w: int, node) -> None:
        nonlocal refused
        async with httpx.AsyncClient(timeout=10) as c:
            k = 0
            while not stop.is_set():
                k += 1
                message = f"w{w}-{k}"
                try:
                    r = await post(c, node.url, hot, message)
                except httpx.HTTPError:
                    refused += 1
                    continue
                if r.status_code == 201:
                    seq = r.json()["seq"]
                    assert seq not in acked, (seq, message, acked[seq])
                    acked[seq] = message
                    if promoted_at is not None and w not in back_at:
                        back_at[w] = time.monotonic() - promoted_at
                        if len(back_at) == len(nodes):
                            all_back.set()
                else:
                    assert r.status_code == 503, r.text  # never a 500, never a hang
                    refused += 1
                    await trio.sleep(0.05)

    async def other_shard_writer() -> None:
        async with httpx.AsyncClient(timeout=10) as c:
            while not stop.is_set():
                r = await post(c, nodes[0].url, other, "elsewhere")
                assert r.status_code == 201, r.text  # the other shard never notices
                await trio.sleep(0.05)

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for viewer in viewers:
                nursery.start_soon(viewer.run)
                await viewer.connected.wait()
            async with trio.open_nursery() as writers:
                for w, node in enumerate(nodes):
                    writers.start_soon(writer, w, node)
                writers.start_soon(other_shard_writer)
                await trio.sleep(2)
                assert len(acked) > 10
                await trio.to_thread.run_sync(primary.stop, "immediate")
                await trio.sleep(0.5)
                await trio.to_thread.run_sync(standby.promote)
                promoted_at = time.monotonic()
                with trio.fail_after(RECONNECT_WITHIN_SECONDS):
                    await all_back.wait()
                await trio.sleep(2)
                stop.set()
            sql = f"SELECT last_seq FROM videos WHERE video_id = '{hot}'"
            head = int(psql(standby, new_primary, sql))
            for viewer in viewers:
                await viewer.wait_for(head, within=20)
            # Each node's bus re-LISTENed on the new primary.
            async with httpx.AsyncClient(timeout=10) as c:
                for node in nodes:
                    text = (await c.get(f"{node.url}/metrics")).text
                    assert _metric(text, "livehub_bus_reconnects") >= 1
                    assert _metric(text, "livehub_bus_connected") == 1
            nursery.cancel_scope.cancel()
    assert max(back_at.values()) < RECONNECT_WITHIN_SECONDS
    rows = psql(
        standby,
        new_primary,
        f"SELECT seq, message FROM comments WHERE video_id = '{hot}' ORDER BY seq",
    )
    stored = {int(seq): m for seq, m in (line.split("|", 1) for line in rows.splitlines())}
    # The counter has no holes; every acked comment is stored, under its seq, once.
    assert list(stored) == list(range(1, head + 1))
    assert {seq: stored[seq] for seq in acked} == acked
    messages = list(stored.values())
    assert len(set(messages)) == len(messages), "a comment was stored twice"
    for viewer in viewers:
        assert viewer.seqs == list(range(1, head + 1))
        assert viewer.messages == stored


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
