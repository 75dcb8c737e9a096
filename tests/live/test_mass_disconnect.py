"""livehub_viewers follows a mass disconnect promptly (issue 12): the unsubscribes of
many viewers leaving at once overflow the actor's inbox, and none may be lost."""

from __future__ import annotations

import httpx
import trio

from ..conftest import run_server
from ..ops.test_metrics import get_metrics


async def test_viewers_drop_to_zero_promptly_after_a_mass_disconnect(settings):
    n = 40
    async with run_server(settings.replace(inbox_size=2)) as server:
        async with server.client() as c:
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    opened = trio.Semaphore(0)

                    async def viewer() -> None:
                        async with httpx.AsyncClient(base_url=server.url, timeout=30) as one:
                            async with one.stream("GET", "/comments/crowd/stream") as r:
                                assert r.status_code == 200
                                opened.release()
                                await trio.sleep_forever()

                    for _ in range(n):
                        nursery.start_soon(viewer)
                    for _ in range(n):
                        await opened.acquire()
                    while (await get_metrics(c))["livehub_viewers"] != n:  # noqa: ASYNC110
                        await trio.sleep(0.05)  # a snapshot: nothing to wait on
                    nursery.cancel_scope.cancel()  # every viewer leaves at once
            # Well before the actor's idle sweep (actor_idle_seconds: 30 s).
            with trio.fail_after(3):
                while (m := await get_metrics(c))["livehub_viewers"] != 0:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            assert m["livehub_streams_open"] == 0
