"""GET /comments/{video}/stream on one node: format, backlog, live order, resume."""

from __future__ import annotations

import contextlib

import pytest
import trio

from livehub.core.model import Draft

from ..conftest import run_server
from ..support import SSEReader, auth


@contextlib.asynccontextmanager
async def open_stream(client, video: str, params=None, headers=None):
    async with client.stream(
        "GET", f"/comments/{video}/stream", params=params or {}, headers=headers or {}
    ) as response:
        yield response, SSEReader(response)


async def post_many(client, video: str, n: int, user: str = "alice", prefix: str = "m"):
    out = []
    for i in range(n):
        r = await client.post(
            f"/comments/{video}", json={"message": f"{prefix}{i}"}, headers=auth(user)
        )
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


async def test_stream_headers_retry_hint_and_live_comments_in_order(server, client):
    with trio.fail_after(20):
        async with open_stream(client, "v") as (response, reader):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            posted = await post_many(client, "v", 5)
            got = await reader.comments(5)
            assert reader.retry == 1000
            assert got == posted
            assert [c["seq"] for c in got] == [1, 2, 3, 4, 5]
    # Live frames went straight from the actor to the socket (the fast path).
    assert server.service.registry.actor("v").statistics().direct_writes >= 1


async def test_new_viewer_without_backlog_gets_only_new_comments(client):
    await post_many(client, "v", 4)
    with trio.fail_after(20):
        async with open_stream(client, "v") as (_, reader):
            live = await post_many(client, "v", 1, prefix="new")
            assert await reader.comments(1) == live
            assert live[0]["seq"] == 5


@pytest.fixture
def small_ring(settings):
    return settings.replace(ring_size=10)


@pytest.mark.parametrize("how", ["header", "query"])
async def test_resume_inside_the_ring_and_far_older_than_it_is_exact(small_ring, how):
    async with run_server(small_ring) as srv, srv.client() as client:
        posted = await post_many(client, "v", 60)
        for last_seen in (55, 3, 0, 59, 60):
            headers = {"Last-Event-ID": str(last_seen)} if how == "header" else {}
            params = {"last_event_id": last_seen} if how == "query" else {}
            with trio.fail_after(20):
                async with open_stream(client, "v", params, headers) as (_, reader):
                    expected = posted[last_seen:]
                    got = await reader.comments(len(expected)) if expected else []
                    assert got == expected
                    live = await post_many(client, "v", 1, prefix=f"after{last_seen}")
                    assert await reader.comments(1) == live
                    posted += live


async def test_resume_ahead_of_this_node_skips_what_the_viewer_has(server, client):
    """The viewer saw seqs 4 and 5 on another node; this node has not delivered them
    yet (no wake-up heard): it skips them, but not what comes after."""
    posted = await post_many(client, "v", 3)
    elsewhere = await server.service.store.insert("v", [Draft("bob", "x"), Draft("bob", "y")])
    assert [c.seq for c in elsewhere] == [4, 5]
    with trio.fail_after(20):
        async with open_stream(client, "v", {"last_event_id": 5}) as (_, reader):
            more = await post_many(client, "v", 2, prefix="x")  # seqs 6, 7
            got = await reader.comments(2)
            assert [c["seq"] for c in got] == [6, 7]
            assert got == more
    assert len(posted) == 3


async def test_idle_stream_gets_heartbeats(settings):
    async with run_server(settings.replace(heartbeat_seconds=0.2)) as srv, srv.client() as client:
        with trio.fail_after(10):
            async with client.stream("GET", "/comments/v/stream") as response:
                pings = 0
                async for line in response.aiter_lines():
                    if line == ": ping":
                        pings += 1
                        if pings == 3:
                            break


@pytest.mark.parametrize(
    "headers,params",
    [
        ({"Last-Event-ID": "abc"}, {}),
        ({}, {"last_event_id": "-1"}),
        ({}, {"backlog": "many"}),
    ],
)
async def test_bad_resume_positions_are_400(client, headers, params):
    r = await client.get("/comments/v/stream", headers=headers, params=params)
    assert r.status_code == 400
    assert r.json()["error"]["code"].startswith("invalid_")


async def test_bad_video_id_on_stream_is_400(client):
    r = await client.get("/comments/bad.id/stream")
    assert r.status_code == 400


async def test_a_last_event_id_past_the_newest_seq_resumes_from_the_head(server, client):
    """After a database restore viewers hold seqs the database no longer has; the
    comments stored next reuse those seqs and must reach them (issue 12)."""
    await post_many(client, "restored", 3)
    with trio.fail_after(20):
        for headers, params in (({"Last-Event-ID": "10"}, None), ({}, {"last_event_id": "10"})):
            async with open_stream(client, "restored", params, headers) as (response, reader):
                assert response.status_code == 200
                posted = await post_many(client, "restored", 2, prefix="after")
                got = await reader.comments(2)
                assert got == posted  # not skipped as "already seen"
        r = await client.get("/metrics")
    assert 'livehub_viewer_catchups_total{reason="past_head"} 2.0' in r.text
