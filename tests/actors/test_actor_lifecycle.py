"""A regression from review, on the real server: an idle actor that cannot retire yet
must not spin. (The other actor regressions run on fakes: test_video_actor.py.)"""

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
