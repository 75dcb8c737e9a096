"""`livehub serve --workers 2`: two nodes in one server, linked by Postgres.

Viewers on either worker get every comment, in order; the viewer count each shows
is the total over both workers, and so is the history response's."""

from __future__ import annotations

import contextlib

import httpx
import pytest
import trio

from ..support import SSEReader, auth, start_livehub

pytestmark = pytest.mark.slow


@pytest.fixture
def two_workers(dsn):
    server = start_livehub(dsn, workers=2, LIVEHUB_VIEWER_COUNT_SECONDS="0.3")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()


@contextlib.asynccontextmanager
async def viewers_on_both(url: str, video: str, per_node: int = 2):
    """Open streams (one connection each) until each worker holds ``per_node``."""
    async with contextlib.AsyncExitStack() as stack:
        by_node: dict[str, list[SSEReader]] = {}
        for _ in range(60):
            if len(by_node) == 2 and all(len(r) >= per_node for r in by_node.values()):
                break
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            response = await stack.enter_async_context(
                client.stream("GET", f"/comments/{video}/stream")
            )
            assert response.status_code == 200
            by_node.setdefault(response.headers["X-Livehub-Node"], []).append(SSEReader(response))
        assert len(by_node) == 2, "the kernel never handed a connection to the 2nd worker"
        yield by_node


async def test_viewers_on_either_worker_get_every_comment_in_order(two_workers):
    n = 60
    with trio.fail_after(60):
        async with viewers_on_both(two_workers.url, "both") as by_node:
            readers = [r for rs in by_node.values() for r in rs]
            posted_on: set[str] = set()
            posted = []
            for i in range(n):
                # a new connection per post, so posts land on both workers too
                async with httpx.AsyncClient(base_url=two_workers.url, timeout=10) as c:
                    r = await c.post(
                        "/comments/both", json={"message": f"m{i}"}, headers=auth(f"u{i % 7}")
                    )
                assert r.status_code == 201, r.text
                posted.append(r.json())
                posted_on.add(r.headers["X-Livehub-Node"])
            got = [await reader.comments(n, within=30) for reader in readers]
    assert [c["seq"] for c in posted] == list(range(1, n + 1))
    assert posted_on == set(by_node), "every post went to one worker; retry the test"
    for comments in got:
        assert comments == posted  # same seqs, same text, same order, on both nodes


async def viewer_counts(reader: SSEReader, want: int) -> int:
    while True:
        event = await reader.next_event()
        if event.event == "viewers" and event.json()["count"] == want:
            return want


async def test_viewer_count_is_the_total_over_both_workers(two_workers):
    with trio.fail_after(30):
        async with viewers_on_both(two_workers.url, "counted") as by_node:
            total = sum(len(rs) for rs in by_node.values())
            for readers in by_node.values():
                for reader in readers:
                    await viewer_counts(reader, total)  # remote ones arrive within seconds
            async with httpx.AsyncClient(base_url=two_workers.url, timeout=10) as c:
                page = (await c.get("/comments/counted")).json()
                assert page["viewers"] == total
                assert page["comments"] == []
        # every viewer left: both nodes publish 0 within an interval or two
        async with httpx.AsyncClient(base_url=two_workers.url, timeout=10) as c:
            while (await c.get("/comments/counted")).json()["viewers"] != 0:  # noqa: ASYNC110
                await trio.sleep(0.1)  # polling other processes: no event to wait on
