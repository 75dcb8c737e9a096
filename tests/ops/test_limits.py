"""Limits on the real server: per-user rate limit and slow mode (429 + Retry-After,
HTTP and WebSocket), and the per-node stream cap (503 + Retry-After)."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from ..conftest import run_server
from ..support import auth, token


async def post(c: httpx.AsyncClient, video: str, user: str, message: str = "hi"):
    return await c.post(f"/comments/{video}", json={"message": message}, headers=auth(user))


async def test_a_user_over_the_rate_gets_429_with_retry_after_and_others_do_not(settings):
    async with run_server(settings.replace(post_rate_per_second=1.0, post_burst=3)) as server:
        async with server.client() as c:
            with trio.fail_after(10):
                codes = [(await post(c, "v", "spammer")).status_code for _ in range(5)]
                assert codes == [201, 201, 201, 429, 429]
                r = await post(c, "v", "spammer")
                assert r.status_code == 429
                assert r.json()["error"]["code"] == "rate_limited"
                assert r.headers["Retry-After"] == "1"
                assert (await post(c, "v", "polite")).status_code == 201
                stored = (await c.get("/comments/v?since=0")).json()["comments"]
                assert [s["user_id"] for s in stored] == ["spammer"] * 3 + ["polite"]
                await trio.sleep(1.05)  # the bucket refills one token per second
                assert (await post(c, "v", "spammer")).status_code == 201
                metrics = (await c.get("/metrics")).text
    assert 'livehub_posts_limited_total{reason="rate"} 3.0' in metrics
    assert 'livehub_post_errors_total{status="429"} 3.0' in metrics


async def test_slow_mode_spaces_one_users_posts_on_one_video(settings):
    slow = settings.replace(slow_mode_videos="calm=30")
    async with run_server(slow) as server, server.client() as c:
        with trio.fail_after(10):
            assert (await post(c, "calm", "u")).status_code == 201
            r = await post(c, "calm", "u")
            assert r.status_code == 429
            assert 25 <= int(r.headers["Retry-After"]) <= 30
            assert "slow mode" in r.json()["error"]["message"]
            assert (await post(c, "calm", "other")).status_code == 201
            assert (await post(c, "busy", "u")).status_code == 201  # no slow mode there
            assert (await post(c, "busy", "u")).status_code == 201


async def test_websocket_posts_are_rate_limited_like_http(settings):
    async with run_server(settings.replace(post_rate_per_second=0.5, post_burst=2)) as server:
        url = server.url.replace("http://", "ws://") + f"/comments/w/ws?token={token('ws')}"
        answers = []
        with trio.fail_after(10):
            async with open_websocket_url(url) as ws:
                for i in range(3):
                    message = {"type": "post", "message": f"m{i}", "ref": i}
                    await ws.send_message(json.dumps(message))
                    while True:
                        m = json.loads(await ws.get_message())
                        if m["type"] in ("posted", "error"):
                            answers.append(m)
                            break
    assert [a["type"] for a in answers] == ["posted", "posted", "error"]
    assert answers[2]["status"] == 429
    assert answers[2]["error"]["code"] == "rate_limited"
    assert answers[2]["ref"] == 2


async def test_stream_cap_refuses_the_next_viewer_with_503_and_frees_slots(settings):
    async with run_server(settings.replace(max_streams=2, overload_retry_seconds=3)) as server:
        async with server.client() as c:
            with trio.fail_after(10):
                async with (
                    c.stream("GET", "/comments/a/stream") as s1,
                    c.stream("GET", "/comments/b/stream") as s2,
                ):
                    assert (s1.status_code, s2.status_code) == (200, 200)
                    r = await c.get("/comments/c/stream")
                    assert r.status_code == 503
                    assert r.headers["Retry-After"] == "3"
                    assert r.json()["error"]["code"] == "overloaded"
                    ws_url = server.url.replace("http://", "ws://") + "/comments/c/ws"
                    with pytest.raises(ConnectionRejected) as rejected:
                        async with open_websocket_url(ws_url):
                            pass
                    assert rejected.value.status_code == 503
                    # posts and history are not streams: still served
                    assert (await post(c, "c", "u")).status_code == 201
                    assert (await c.get("/comments/c")).status_code == 200
                # both streams closed: their slots are free again
                while server.service.gate.statistics().streams:  # noqa: ASYNC110
                    await trio.sleep(0.01)  # a statistics() snapshot has no event
                async with c.stream("GET", "/comments/c/stream") as s3:
                    assert s3.status_code == 200
            metrics = (await c.get("/metrics")).text
    assert 'livehub_requests_refused_total{reason="full"} 2.0' in metrics


async def test_one_client_over_its_stream_cap_gets_429_and_others_do_not(settings):
    """One client may not take every stream slot (issue 12); behind a trusted proxy
    the client is the X-Forwarded-For address, and nobody else can claim one."""
    capped = settings.replace(max_streams_per_client=2, trusted_proxies="127.0.0.1/32")
    async with run_server(capped) as server, server.client() as c:
        ws_url = server.url.replace("http://", "ws://") + "/comments/c/ws"
        with trio.fail_after(15):
            async with (
                c.stream("GET", "/comments/a/stream") as s1,
                c.stream("GET", "/comments/b/stream") as s2,
            ):
                assert (s1.status_code, s2.status_code) == (200, 200)
                r = await c.get("/comments/c/stream")
                assert r.status_code == 429
                assert r.json()["error"]["code"] == "too_many_streams"
                assert r.headers["Retry-After"] == "2"
                with pytest.raises(ConnectionRejected) as rejected:
                    async with open_websocket_url(ws_url):
                        pass
                assert rejected.value.status_code == 429
                # another client behind the (trusted) proxy still gets its streams
                other = {"X-Forwarded-For": "203.0.113.9"}
                async with (
                    c.stream("GET", "/comments/a/stream", headers=other) as s3,
                    c.stream("GET", "/comments/a/stream", headers=other) as s4,
                ):
                    assert (s3.status_code, s4.status_code) == (200, 200)
                    assert (await c.get("/comments/a/stream", headers=other)).status_code == 429
            # the first client's streams closed: its slots are free again
            while server.service.gate.statistics().streams:  # noqa: ASYNC110
                await trio.sleep(0.01)  # a statistics() snapshot has no event
            async with c.stream("GET", "/comments/c/stream") as s5:
                assert s5.status_code == 200
        metrics = (await c.get("/metrics")).text
    assert 'livehub_requests_refused_total{reason="client"} 3.0' in metrics


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    async with run_server(settings.replace(max_streams_per_client=1)) as server:
        async with server.client() as c:
            with trio.fail_after(15):
                async with c.stream("GET", "/comments/a/stream") as s1:
                    assert s1.status_code == 200
                    spoofed = {"X-Forwarded-For": "203.0.113.77"}
                    r = await c.get("/comments/a/stream", headers=spoofed)
                    assert r.status_code == 429
