"""Two livehub processes, one Postgres: comments cross nodes through LISTEN/NOTIFY,
in seq order, gapless, even when the LISTEN connection is killed."""

from __future__ import annotations

import contextlib
import itertools

import httpx
import pytest
import trio

from ..support import SSEReader, auth, psql, start_livehub

pytestmark = pytest.mark.slow


@pytest.fixture
def nodes(dsn):
    started = []
    try:
        for _ in range(2):
            started.append(start_livehub(dsn, LIVEHUB_RESYNC_INTERVAL_SECONDS="1"))
        yield started
    finally:
        for node in started:
            node.stop()


@contextlib.asynccontextmanager
async def viewers(urls: list[str], video: str):
    """One SSE viewer per URL; yields their readers once every stream is open."""
    async with contextlib.AsyncExitStack() as stack:
        readers = []
        for url in urls:
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            response = await stack.enter_async_context(
                client.stream("GET", f"/comments/{video}/stream")
            )
            assert response.status_code == 200
            readers.append(SSEReader(response))
        yield readers


async def post(client: httpx.AsyncClient, video: str, message: str, user: str = "w") -> dict:
    r = await client.post(f"/comments/{video}", json={"message": message}, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


async def test_posts_on_either_node_reach_viewers_on_both_in_order(nodes):
    a, b = nodes
    with trio.fail_after(30):
        async with viewers([a.url, b.url], "v") as readers, httpx.AsyncClient() as c:
            posted = []
            for i, node in zip(range(10), itertools.cycle(nodes), strict=False):
                r = await c.post(
                    f"{node.url}/comments/v", json={"message": f"hello {i}"}, headers=auth()
                )
                assert r.status_code == 201
                posted.append(r.json())
            for reader in readers:
                assert await reader.comments(10) == posted


async def test_six_writers_over_two_nodes_every_viewer_gets_exactly_1_to_n(nodes):
    a, b = nodes
    per_writer = 55
    n = 6 * per_writer
    with trio.fail_after(90):
        async with viewers([a.url, a.url, b.url, b.url], "hot") as readers:
            results: dict[int, list[dict]] = {}

            async def read_all(i, reader):
                results[i] = await reader.comments(n, within=80)

            async def writer(w: int, url: str):
                async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                    for k in range(per_writer):
                        await post(c, "hot", f"w{w}-{k}", user=f"writer{w}")

            async with trio.open_nursery() as nursery:
                for i, reader in enumerate(readers):
                    nursery.start_soon(read_all, i, reader)
                for w in range(6):
                    nursery.start_soon(writer, w, (a.url, b.url)[w % 2])
    reference = results[0]
    assert [c["seq"] for c in reference] == list(range(1, n + 1))
    assert sorted(c["message"] for c in reference) == sorted(
        f"w{w}-{k}" for w in range(6) for k in range(per_writer)
    )
    for i in range(1, 4):
        assert results[i] == reference  # same seqs, same content, on both nodes


async def test_killing_the_listen_connection_loses_nothing(nodes, pg_cluster, dsn):
    a, b = nodes
    n = 120
    with trio.fail_after(60):
        async with viewers([b.url, b.url], "v") as readers:
            got: dict[int, list[dict]] = {}

            async def read_all(i, reader):
                got[i] = await reader.comments(n, within=50)

            async with trio.open_nursery() as nursery:
                for i, reader in enumerate(readers):
                    nursery.start_soon(read_all, i, reader)
                async with httpx.AsyncClient(base_url=a.url, timeout=30) as c:
                    for k in range(n):
                        await post(c, "v", f"c{k}")
                        if k in (30, 70):
                            killed = await trio.to_thread.run_sync(
                                psql,
                                pg_cluster,
                                dsn,
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
                            )
                            assert int(killed) >= 1
                        await trio.sleep(0.01)
    for i in got:
        assert [c["seq"] for c in got[i]] == list(range(1, n + 1))
    async with httpx.AsyncClient() as c:
        metrics = (await c.get(b.url + "/metrics")).text
    reconnects = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("livehub_bus_reconnects ")
    ]
    assert reconnects and reconnects[0] >= 1, metrics


async def test_posts_into_many_videos_on_two_nodes_keep_every_video_gapless(nodes):
    """Each node merges many videos' batches into one transaction; counter rows are
    locked in video order on every node, so the nodes never deadlock and every video
    still gets seqs 1..n with no hole."""
    a, b = nodes
    videos = [f"room-{i:02d}" for i in range(40)]
    per_video_per_writer = 3
    with trio.fail_after(60):

        async def writer(w: int, url: str) -> None:
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                async with trio.open_nursery() as nursery:
                    for v in videos:
                        for k in range(per_video_per_writer):
                            nursery.start_soon(post, c, v, f"w{w}-{k}", f"writer{w}")

        async with trio.open_nursery() as nursery:
            for w in range(4):
                nursery.start_soon(writer, w, (a.url, b.url)[w % 2])
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as c:
            for v in videos:
                r = await c.get(f"/comments/{v}", params={"since": 0, "pagesize": 500})
                seqs = [x["seq"] for x in r.json()["comments"]]
                assert seqs == list(range(1, 4 * per_video_per_writer + 1)), (v, seqs)
