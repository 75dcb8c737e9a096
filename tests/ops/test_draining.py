"""A draining node, in process (deterministic, unlike racing a real SIGTERM): it
answers what a balancer and clients need to move elsewhere."""

from __future__ import annotations

import pytest
import trio

from ..support import SSEReader, auth


async def test_a_draining_node_sends_everyone_elsewhere(server, client):
    with trio.fail_after(10):
        async with client.stream("GET", "/comments/d/stream") as s:
            reader = SSEReader(s)
            assert (await reader.next_event()).event == "viewers"
            reader.retry = None
            assert await server.service.gate.drain(5) is True
            with pytest.raises(EOFError):
                await reader.next_event()  # the stream ended...
            assert reader.retry == 1000  # ...after a reconnect hint
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "shutting_down"
        r = await client.post("/comments/d", json={"message": "late"}, headers=auth())
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "shutting_down"
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["Connection"] == "close"  # no more requests on this connection
        refused = await client.get("/comments/d/stream")
        assert refused.status_code == 503
        assert (await client.get("/healthz")).status_code == 200  # alive, just leaving
        history = await client.get("/comments/d?since=0")
        assert history.json()["comments"] == []  # nothing late was stored
