"""Regressions from review: an idle actor that cannot retire yet must not spin, and a
subscribe cancelled while the actor answers must leave no subscription behind."""

from __future__ import annotations

import time

import trio

from livehub.actors import registry as registry_module

from ..conftest import run_server
from ..support import auth


async def test_idle_actor_that_cannot_retire_yet_keeps_serving_and_does_not_spin(
    settings, monkeypatch
):
    async with run_server(settings.replace(actor_idle_seconds=0.2)) as srv:
        async with srv.client() as client:
            r = await client.post("/comments/v", json={"message": "one"}, headers=auth())
            assert r.status_code == 201
            # Never quiet (as if a post were always in flight): it may not retire.
            monkeypatch.setattr(registry_module._Handle, "quiet", lambda self: False)
            cpu = time.process_time()
            await trio.sleep(1.0)  # five idle periods
            assert time.process_time() - cpu < 0.5  # not spinning on a past deadline
            with trio.fail_after(5):
                r = await client.post("/comments/v", json={"message": "two"}, headers=auth())
                assert r.json()["seq"] == 2
                page = (await client.get("/comments/v?since=0")).json()["comments"]
                assert [c["seq"] for c in page] == [1, 2]
                actor = srv.service.registry.actor("v")
                while actor.statistics().last_delivered != 2:  # noqa: ASYNC110 - snapshot
                    await trio.sleep(0.01)


async def test_a_subscribe_cancelled_while_the_actor_answers_leaves_nothing(server, monkeypatch):
    from livehub.actors.video import VideoActor

    registry = server.service.registry
    await registry.subscribe("v", None, 0)  # the actor exists; one real viewer
    release = trio.Event()
    real = VideoActor._subscribe

    async def slow_subscribe(self, msg):
        await release.wait()  # the actor is busy when the viewer gives up
        await real(self, msg)

    monkeypatch.setattr(VideoActor, "_subscribe", slow_subscribe)
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(registry.subscribe, "v", None, 0)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()  # every one of them gives up while waiting
    release.set()
    await trio.sleep(0.2)
    assert registry.actor("v").statistics().subscribers == 1
    assert registry.statistics().viewers == 1


async def test_a_post_whose_actor_crashes_mid_write_still_gets_its_201(server, client, monkeypatch):
    """The merged write outlives the actor: a comment it stores is acknowledged, not
    answered with a 503 that a retrying client would turn into a duplicate."""
    from livehub.actors.messages import Resync
    from livehub.actors.video import VideoActor
    from livehub.db.store import PgCommentStore

    release = trio.Event()
    writing = trio.Event()
    real_insert_many = PgCommentStore.insert_many

    async def slow_insert_many(self, batches):
        writing.set()
        await release.wait()
        return await real_insert_many(self, batches)

    real_handle = VideoActor._handle

    async def crash_on_resync(self, msg):
        if isinstance(msg, Resync):
            raise RuntimeError("injected actor crash")
        await real_handle(self, msg)

    await client.post("/comments/v", json={"message": "warm-up"}, headers=auth())
    monkeypatch.setattr(PgCommentStore, "insert_many", slow_insert_many)
    monkeypatch.setattr(VideoActor, "_handle", crash_on_resync)
    result = {}

    async def post() -> None:
        r = await client.post("/comments/v", json={"message": "mid-crash"}, headers=auth())
        result["r"] = r

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post)
            await writing.wait()
            server.service.registry.resync_all()  # the actor crashes on it
            while server.service.registry.statistics().restarts < 1:  # noqa: ASYNC110
                await trio.sleep(0.01)
            release.set()
    assert result["r"].status_code == 201, result["r"].text
    assert result["r"].json()["seq"] == 2
    stored = (await client.get("/comments/v?since=0")).json()["comments"]
    assert [c["message"] for c in stored] == ["warm-up", "mid-crash"]
