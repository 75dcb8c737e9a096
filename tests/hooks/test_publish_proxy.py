"""The publish proxy against a real endpoint (tests/hookserver.py) and real
``livehub serve`` processes: accept, reject, modify, batching, a slow proxy for one
video beside another, timeouts and a proxy that is down under both policies."""

from __future__ import annotations

import functools
import json
import time

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from livehub.core import signing

from ..hookserver import Recorded, open_hook_server
from ..support import SSEReader, auth, start_livehub, token

pytestmark = pytest.mark.slow

PROXY_SECRET = "proxy-secret-for-tests-0123456789"


def proxy_env(url: str, policy: str, timeout: float) -> dict[str, str]:
    return {
        "LIVEHUB_PUBLISH_PROXY_URL": url,
        "LIVEHUB_PUBLISH_PROXY_SECRET": PROXY_SECRET,
        "LIVEHUB_PUBLISH_PROXY_FAILURE": policy,
        "LIVEHUB_PUBLISH_PROXY_TIMEOUT_SECONDS": str(timeout),
    }


async def start(dsn: str, **env: str):
    return await trio.to_thread.run_sync(functools.partial(start_livehub, dsn, **env))


def make_handler(slow_seconds: float):
    """The integrator: ``rej-*`` videos refuse "bad" words, ``mod-*`` mask them,
    ``slow-*`` answer after ``slow_seconds``, ``hold-*`` after 0.4 s; all else accept."""

    async def handler(rec: Recorded) -> tuple[int, object]:
        body = rec.json()
        video = body["video_id"]
        if video.startswith("slow"):
            await trio.sleep(slow_seconds)
        elif video.startswith("hold"):
            await trio.sleep(0.4)
        results = []
        for post in body["posts"]:
            if video.startswith("rej") and "bad" in post["message"]:
                results.append({"id": post["id"], "action": "reject", "reason": "no bad words"})
            elif video.startswith("mod"):
                results.append(
                    {"action": "accept", "message": post["message"].replace("bad", "***")}
                )
            else:
                results.append({"action": "accept"})
        return 200, {"results": results}

    return handler


def requests_for(hook, video: str) -> list[dict]:
    return [r.json() for r in hook.requests if r.json()["video_id"] == video]


async def wait_for_request(hook, video: str, count: int = 1) -> None:
    await hook.wait_until(lambda: len(requests_for(hook, video)) >= count, 5)


async def history(c: httpx.AsyncClient, video: str) -> list[str]:
    r = await c.get(f"/comments/{video}")
    assert r.status_code == 200, r.text
    return [x["message"] for x in r.json()["comments"]]


async def post(c: httpx.AsyncClient, video: str, message: str, user: str = "alice"):
    return await c.post(f"/comments/{video}", json={"message": message}, headers=auth(user))


async def ws_answer(ws) -> dict:
    """The next answer to a post (not a ping, a count or a broadcast comment)."""
    with trio.fail_after(5):
        while True:
            message = json.loads(await ws.get_message())
            if message["type"] in ("posted", "error"):
                return message


async def test_open_policy_verdicts_batching_isolation_and_down(dsn):
    hook_cm = open_hook_server(make_handler(slow_seconds=3.0))
    hook = await hook_cm.__aenter__()
    srv = await start(dsn, **proxy_env(hook.url, "open", 1.0))
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as c:
            # accept: the proxy sees who posted what, where from
            r = await post(c, "acc-1", "hello")
            assert r.status_code == 201, r.text
            assert r.json()["message"] == "hello"
            [sent] = requests_for(hook, "acc-1")
            [p] = sent["posts"]
            assert (p["user_id"], p["message"], p["transport"]) == ("alice", "hello", "http")
            assert p["client_ip"] == "127.0.0.1"

            # reject: 403 rejected with the proxy's reason; nothing stored
            r = await post(c, "rej-1", "a bad word")
            assert r.status_code == 403, r.text
            assert r.json()["error"] == {"code": "rejected", "message": "no bad words"}
            assert (await post(c, "rej-1", "a fine word")).status_code == 201
            assert await history(c, "rej-1") == ["a fine word"]

            # modify: the poster, a viewer and history all get the changed text
            async with c.stream("GET", "/comments/mod-1/stream") as resp:
                assert resp.status_code == 200
                reader = SSEReader(resp)
                r = await post(c, "mod-1", "bad news")
                assert r.status_code == 201, r.text
                assert r.json()["message"] == "*** news"
                [seen] = await reader.comments(1, within=5)
                assert seen["message"] == "*** news"
            assert await history(c, "mod-1") == ["*** news"]

            # WebSocket posts go through the proxy too
            url = srv.url.replace("http://", "ws://") + f"/comments/rej-ws/ws?token={token('bo')}"
            async with open_websocket_url(url) as ws:
                await ws.send_message(json.dumps({"type": "post", "message": "bad", "ref": 1}))
                answer = await ws_answer(ws)
                assert answer["status"] == 403
                assert answer["error"] == {"code": "rejected", "message": "no bad words"}
            [sent] = requests_for(hook, "rej-ws")
            assert sent["posts"][0]["transport"] == "websocket"
            assert await history(c, "rej-ws") == []

            # batching: while the video's first request is held, five posts queue
            # and go together in the next request
            async with trio.open_nursery() as nursery:
                first = []

                async def post_first() -> None:
                    first.append(await post(c, "hold-1", "first"))

                nursery.start_soon(post_first)
                await wait_for_request(hook, "hold-1")
                answers: list = []

                async def post_one(i: int) -> None:
                    answers.append(await post(c, "hold-1", f"m{i}", user=f"u{i}"))

                for i in range(5):
                    nursery.start_soon(post_one, i)
            assert first[0].status_code == 201
            assert sorted(r.status_code for r in answers) == [201] * 5
            sent = requests_for(hook, "hold-1")
            assert [len(s["posts"]) for s in sent] == [1, 5], sent
            assert sorted(p["message"] for p in sent[1]["posts"]) == [f"m{i}" for i in range(5)]

            # a slow proxy for one video does not delay another video's posts; the
            # slow one times out (1 s) and, open, is stored as posted
            async with trio.open_nursery() as nursery:
                slow: list = []

                async def post_slow() -> None:
                    t0 = time.monotonic()
                    slow.append((await post(c, "slow-a", "patience"), time.monotonic() - t0))

                nursery.start_soon(post_slow)
                await wait_for_request(hook, "slow-a")
                t0 = time.monotonic()
                r = await post(c, "acc-b", "quick")
                quick = time.monotonic() - t0
                assert r.status_code == 201
                assert quick < 0.5, quick
                assert not slow  # still waiting for its proxy meanwhile
            r, took = slow[0]
            assert r.status_code == 201, r.text
            assert 0.9 < took < 2.5, took
            assert await history(c, "slow-a") == ["patience"]

            # every request was signed with the shared secret, recently
            now = time.time()
            for rec in hook.requests:
                header = rec.headers[signing.SIGNATURE_HEADER]
                assert signing.verify(PROXY_SECRET.encode(), rec.body, header, now)
                assert not signing.verify(b"another secret", rec.body, header, now)

            # the proxy goes down: open stores posts as posted
            await hook_cm.__aexit__(None, None, None)
            hook_cm = None
            r = await post(c, "acc-2", "nobody checks")
            assert r.status_code == 201, r.text
            assert await history(c, "acc-2") == ["nobody checks"]

            metrics = (await c.get("/metrics")).text
            for line in (
                'livehub_proxy_requests_total{outcome="ok"}',
                'livehub_proxy_requests_total{outcome="timeout"}',
                'livehub_proxy_requests_total{outcome="error"}',
                'livehub_proxy_posts_total{verdict="reject"}',
                'livehub_proxy_posts_total{verdict="modify"}',
                'livehub_proxy_posts_total{verdict="failed_open"}',
                "livehub_proxy_seconds_bucket",
            ):
                assert line in metrics, line
    finally:
        await trio.to_thread.run_sync(srv.stop)
        if hook_cm is not None:
            await hook_cm.__aexit__(None, None, None)


async def test_closed_policy_refuses_when_slow_or_down(dsn):
    hook_cm = open_hook_server(make_handler(slow_seconds=1.5))
    hook = await hook_cm.__aenter__()
    srv = await start(dsn, **proxy_env(hook.url, "closed", 0.5))
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as c:
            assert (await post(c, "acc-1", "checked")).status_code == 201
            assert (await post(c, "rej-1", "bad")).status_code == 403

            t0 = time.monotonic()
            r = await post(c, "slow-1", "too slow")
            assert time.monotonic() - t0 < 1.4
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "proxy_unavailable"
            assert int(r.headers["retry-after"]) >= 1
            await trio.sleep(1.5)  # the proxy's late "accept" must not store it
            assert await history(c, "slow-1") == []

            await hook_cm.__aexit__(None, None, None)
            hook_cm = None
            r = await post(c, "acc-2", "nobody checks")
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "proxy_unavailable"
            assert await history(c, "acc-2") == []
            assert await history(c, "acc-1") == ["checked"]
    finally:
        await trio.to_thread.run_sync(srv.stop)
        if hook_cm is not None:
            await hook_cm.__aexit__(None, None, None)
