"""/metrics on the real server: scraped before and after traffic, the counters an
operator graphs move by what happened."""

from __future__ import annotations

import re

import httpx
import trio

from livehub.core.model import Draft

from ..support import SSEReader, auth


def scrape(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (comments and types skipped)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def get_metrics(c: httpx.AsyncClient) -> dict[str, float]:
    r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "_created" not in r.text  # no clutter (issue 12)
    return scrape(r.text)


async def test_metrics_move_with_posts_viewers_and_deliveries(server, client):
    before = await get_metrics(client)
    assert before["livehub_live_videos"] == 0
    assert before["livehub_viewers"] == 0
    assert before["livehub_posts_total"] == 0
    assert before["livehub_db_pool_max"] == server.service.settings.max_db_connections
    with trio.fail_after(20):
        async with (
            client.stream("GET", "/comments/m/stream") as s1,
            client.stream("GET", "/comments/m/stream") as s2,
        ):
            readers = [SSEReader(s1), SSEReader(s2)]
            during = await get_metrics(client)
            for i in range(5):
                r = await client.post("/comments/m", json={"message": f"c{i}"}, headers=auth())
                assert r.status_code == 201
            for reader in readers:
                assert [c["seq"] for c in await reader.comments(5)] == [1, 2, 3, 4, 5]
            r = await client.post("/comments/m", json={"message": ""}, headers=auth())
            assert r.status_code == 422
            after = await get_metrics(client)
    assert during["livehub_live_videos"] == 1
    assert during["livehub_viewers"] == 2
    assert during["livehub_streams_open"] == 2
    assert after["livehub_posts_total"] == 5
    assert after['livehub_post_errors_total{status="422"}'] == 1
    assert after["livehub_comments_delivered_total"] == 10  # 5 comments x 2 viewers
    assert after["livehub_post_seconds_count"] == 5
    assert 0 < after["livehub_post_seconds_sum"] < 5
    # every comment went through one insert transaction or another
    assert after["livehub_batch_size_sum"] == 5
    assert 1 <= after["livehub_batch_size_count"] <= 5
    assert after["livehub_delivery_seconds_count"] >= 1
    assert after['livehub_delivery_seconds_bucket{le="+Inf"}'] >= 1
    assert after["livehub_bus_connected"] == 1
    assert after["livehub_db_pool_size"] >= 1
    assert 0 <= after["livehub_db_pool_in_use"] <= after["livehub_db_pool_size"]
    assert after["livehub_draining"] == 0
    for name in ("livehub_bus_reconnects", "livehub_requests_refused_total"):
        assert any(re.match(re.escape(name) + r"($|\{)", k) for k in after), name


async def test_a_lagging_viewer_is_counted_as_caught_up(server, client):
    """A resume from before the ring's reach is a catch-up read from Postgres."""
    settings = server.service.settings
    n = settings.ring_size + 5
    with trio.fail_after(60):
        await server.service.store.insert("old", [Draft("u", f"m{i}") for i in range(n)])
        async with client.stream(
            "GET", "/comments/old/stream", headers={"Last-Event-ID": "0"}
        ) as s:
            got = await SSEReader(s).comments(n, within=30)
        assert [c["seq"] for c in got] == list(range(1, n + 1))
        after = await get_metrics(client)
    assert after['livehub_viewer_catchups_total{reason="resume"}'] >= 1
