"""Webhooks against a real endpoint (tests/hookserver.py) and real ``livehub serve``
processes: signed deliveries of comments and moderation events, retries with
backoff while the endpoint fails, and nothing lost or acknowledged twice across a
livehub killed by PID and started again."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time

import httpx
import pytest
import trio

from livehub.core import signing

from ..hookserver import Recorded, open_hook_server
from ..support import auth, moderator, start_livehub

pytestmark = pytest.mark.slow

HOOK_SECRET = "webhook-secret-for-tests-0123456789"


def hook_env(url: str) -> dict[str, str]:
    return {
        "LIVEHUB_WEBHOOK_URL": url,
        "LIVEHUB_WEBHOOK_SECRET": HOOK_SECRET,
        "LIVEHUB_WEBHOOK_TIMEOUT_SECONDS": "1",
        "LIVEHUB_WEBHOOK_RETRY_BASE_SECONDS": "0.3",
        "LIVEHUB_WEBHOOK_RETRY_MAX_SECONDS": "2",
        "LIVEHUB_WEBHOOK_POLL_SECONDS": "0.2",
        "LIVEHUB_WEBHOOK_SWEEP_SECONDS": "1",
    }


class Endpoint:
    """Answers 500 while ``down``, or while a request holds an event it has failed
    fewer than ``failures`` times; else 200. Keeps what it answered."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.down = False
        self.answered: list[tuple[Recorded, int]] = []
        self.attempts: dict[str, list[float]] = {}

    async def __call__(self, rec: Recorded) -> tuple[int, object]:
        ids = [e["id"] for e in rec.json()["events"]]
        fail = self.down or any(len(self.attempts.get(i, ())) < self.failures for i in ids)
        for i in ids:
            self.attempts.setdefault(i, []).append(rec.at)
        status = 500 if fail else 200
        self.answered.append((rec, status))
        return status, {}

    def acked(self) -> list[dict]:
        return [e for rec, status in self.answered if status == 200 for e in rec.json()["events"]]

    def acked_ids(self) -> list[str]:
        return [e["id"] for e in self.acked()]


async def start(dsn: str, **env: str):
    return await trio.to_thread.run_sync(functools.partial(start_livehub, dsn, **env))


async def post(c: httpx.AsyncClient, video: str, message: str, user: str = "alice"):
    r = await c.post(f"/comments/{video}", json={"message": message}, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


async def test_signed_deliveries_retried_with_backoff(dsn):
    endpoint = Endpoint(failures=3)
    async with open_hook_server(endpoint) as hook:
        srv = await start(dsn, **hook_env(hook.url))
        try:
            async with httpx.AsyncClient(base_url=srv.url, timeout=10) as c:
                stored = [await post(c, "v1", f"comment {i}") for i in range(3)]
                r = await c.delete(f"/comments/v1/{stored[1]['seq']}", headers=moderator())
                assert r.status_code == 204
                r = await c.post("/videos/v1/bans", json={"user_id": "troll"}, headers=moderator())
                assert r.status_code == 201
                r = await c.patch("/videos/v1/settings", json={"closed": True}, headers=moderator())
                assert r.status_code == 200
                await hook.wait_until(lambda: len(endpoint.acked()) >= 6, 30)
                await trio.sleep(0.5)  # anything delivered twice would show up now
                metrics = (await c.get("/metrics")).text
        finally:
            await trio.to_thread.run_sync(srv.stop)

    events = {e["id"]: e for e in endpoint.acked()}
    assert len(endpoint.acked()) == len(events) == 6, endpoint.acked_ids()
    by_type: dict[str, list[dict]] = {}
    for e in events.values():
        by_type.setdefault(e["type"], []).append(e)
    stored_events = sorted(by_type["comment.stored"], key=lambda e: e["data"]["seq"])
    assert [e["id"] for e in stored_events] == [f"c:v1:{c['seq']}" for c in stored]
    assert stored_events[0]["data"]["message"] == "comment 0"
    assert stored_events[0]["data"]["user_id"] == "alice"
    [deleted] = by_type["comment.deleted"]
    assert deleted["data"] == {"video_id": "v1", "actor": "mod", "seq": stored[1]["seq"]}
    [banned] = by_type["user.banned"]
    assert banned["data"]["user_id"] == "troll" and banned["data"]["seconds"] is None
    [closed] = by_type["chat.settings_changed"]
    assert closed["data"]["changes"] == {"closed": True}

    # every request was signed, failed ones and retries alike
    now = time.time()
    for rec, _ in endpoint.answered:
        header = rec.headers[signing.SIGNATURE_HEADER]
        assert signing.verify(HOOK_SECRET.encode(), rec.body, header, now)

    # each event failed three times, retried after growing waits (0.3, 0.6, 1.2 s,
    # at most 2 s), then was acknowledged; every attempt carried the same id
    for event_id, times in endpoint.attempts.items():
        assert len(times) >= 4, (event_id, times)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for k, gap in enumerate(gaps):
            assert gap >= 0.8 * min(2.0, 0.3 * 2**k), (event_id, gaps)

    assert 'livehub_webhook_requests_total{outcome="status"}' in metrics
    assert "livehub_webhook_retries_total" in metrics
    assert 'livehub_webhook_events_total{type="comment.stored"}' in metrics
    assert "livehub_webhook_backlog" in metrics


async def test_deliveries_survive_a_killed_livehub(dsn):
    endpoint = Endpoint()
    endpoint.down = True
    async with open_hook_server(endpoint) as hook:
        srv = await start(dsn, **hook_env(hook.url))
        expected: set[str] = set()
        try:
            async with httpx.AsyncClient(base_url=srv.url, timeout=10) as c:
                for i in range(24):
                    video = f"v{i % 3}"
                    comment = await post(c, video, f"m{i}", user=f"u{i}")
                    expected.add(f"c:{video}:{comment['seq']}")
                r = await c.post("/videos/v0/bans", json={"user_id": "troll"}, headers=moderator())
                assert r.status_code == 201
            # deliveries are pending (the endpoint failed them at least once)
            await hook.wait_until(lambda: len(endpoint.answered) >= 2, 10)
        finally:
            os.killpg(srv.proc.pid, signal.SIGKILL)  # no drain, no goodbye
            await trio.to_thread.run_sync(srv.proc.wait, 5)
        assert endpoint.acked() == []

        endpoint.down = False
        srv = await start(dsn, **hook_env(hook.url))
        try:
            await hook.wait_until(lambda: len(endpoint.acked()) >= len(expected) + 1, 30)
            await trio.sleep(1.5)  # a sweep round more: nothing may come twice
        finally:
            await trio.to_thread.run_sync(srv.stop)

    acked = endpoint.acked_ids()
    comments = [i for i in acked if i.startswith("c:")]
    assert sorted(comments) == sorted(expected)  # every comment, each acknowledged once
    [ban] = [e for e in endpoint.acked() if e["type"] == "user.banned"]
    assert ban["id"].startswith("m:") and acked.count(ban["id"]) == 1
    assert len(acked) == len(expected) + 1
    # every attempt at an event, before and after the kill, used the same id
    by_content: dict[tuple, set[str]] = {}
    for rec, _ in endpoint.answered:
        for e in rec.json()["events"]:
            key = (e["type"], e["video_id"], e["data"].get("seq"), e["data"].get("user_id"))
            by_content.setdefault(key, set()).add(e["id"])
    assert all(len(ids) == 1 for ids in by_content.values()), by_content


async def test_two_nodes_share_the_outbox_without_double_delivery(dsn):
    endpoint = Endpoint()
    async with open_hook_server(endpoint) as hook:
        nodes = [await start(dsn, **hook_env(hook.url)) for _ in range(2)]
        expected: set[str] = set()
        try:
            clients = [httpx.AsyncClient(base_url=n.url, timeout=10) for n in nodes]
            async with clients[0], clients[1], trio.open_nursery() as nursery:

                async def post_some(k: int) -> None:
                    for i in range(15):
                        video = f"v{i % 3}"
                        comment = await post(clients[k], video, f"n{k} m{i}", user=f"u{k}")
                        expected.add(f"c:{video}:{comment['seq']}")

                nursery.start_soon(post_some, 0)
                nursery.start_soon(post_some, 1)
                for k, c in enumerate(clients):
                    r = await c.post(
                        f"/videos/v{k}/bans", json={"user_id": "troll"}, headers=moderator()
                    )
                    assert r.status_code == 201
            total = len(expected) + 2
            await hook.wait_until(lambda: len(endpoint.acked()) >= total, 20)
            await trio.sleep(2.5)  # two more sweeps on each node: nothing may come again
        finally:
            for n in nodes:
                await trio.to_thread.run_sync(n.stop)

    sent = [e["id"] for rec, _ in endpoint.answered for e in rec.json()["events"]]
    assert len(sent) == len(set(sent)) == total, sorted(sent)
    assert {i for i in sent if i.startswith("c:")} == expected
