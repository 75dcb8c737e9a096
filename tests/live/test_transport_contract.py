"""One contract, both transports: what a viewer gets over SSE and over WebSocket.

``ViewerSession`` is shared by the two handlers, and only the encoding differs; this
suite holds them to the same behaviour, case by case, against the real server: live
comments once and in order, resume exactly after a position, backlog, moderation
events and tombstones, the pin at connect, viewer counts, refusals, and leaving.
Each transport is a small adapter turning what arrives into ``Item``s.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from ..conftest import run_server
from ..support import SSEReader, auth, moderator

TRANSPORTS = ["sse", "ws"]
USERS = itertools.count()


@dataclass(frozen=True)
class Item:
    """One thing a viewer received: ``kind`` (comment, deleted, pinned, settings,
    viewers), its stream position (None: not a position, e.g. a count or the pin
    at connect) and its JSON body."""

    kind: str
    position: int | None
    body: dict


class SseViewer:
    def __init__(self, reader: SSEReader) -> None:
        self._reader = reader

    async def next(self) -> Item:
        ev = await self._reader.next_event()
        return Item(ev.event, ev.id, json.loads(ev.data))


class WsViewer:
    def __init__(self, ws) -> None:
        self._ws = ws

    async def next(self) -> Item:
        while True:
            message = json.loads(await self._ws.get_message())
            kind = message.pop("type")
            if kind == "ping":
                continue
            if kind == "comment":
                return Item(kind, message["comment"]["seq"], message["comment"])
            return Item(kind, message.pop("id", None), message)


@contextlib.asynccontextmanager
async def viewer(
    transport: str, server, video: str, after: int | None = None, backlog: int | None = None
) -> AsyncIterator[SseViewer | WsViewer]:
    """A viewer of ``video``, subscribed when this returns (nothing posted later is
    missed), resuming ``after`` a position if given."""
    params = {} if backlog is None else {"backlog": backlog}
    if transport == "sse":
        headers = {} if after is None else {"Last-Event-ID": str(after)}
        query = "?" + urlencode(params) if params else ""
        async with server.client() as client:
            async with client.stream(
                "GET", f"/comments/{video}/stream{query}", headers=headers
            ) as response:
                assert response.status_code == 200
                yield SseViewer(SSEReader(response))
        return
    if after is not None:
        params["last_event_id"] = after
    query = "?" + urlencode(params) if params else ""
    url = server.url.replace("http://", "ws://", 1) + f"/comments/{video}/ws{query}"
    async with open_websocket_url(url) as ws:
        yield WsViewer(ws)


async def items(v, n: int, kinds: tuple[str, ...] = ("comment", "deleted", "pinned")):
    """The next ``n`` items of these kinds (others, like viewer counts, skipped)."""
    out = []
    with trio.fail_after(10):
        while len(out) < n:
            item = await v.next()
            if item.kind in kinds:
                out.append(item)
    return out


async def post(client: httpx.AsyncClient, video: str, *messages: str) -> None:
    for m in messages:
        user = f"poster{next(USERS)}"
        r = await client.post(f"/comments/{video}", json={"message": m}, headers=auth(user))
        assert r.status_code == 201, r.text


def positions(got: list[Item]) -> list[int | None]:
    return [i.position for i in got]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_live_comments_arrive_once_in_seq_order(server, client, transport):
    async with viewer(transport, server, "live") as v:
        await post(client, "live", *[f"m{i}" for i in range(5)])
        got = await items(v, 5)
        assert positions(got) == [1, 2, 3, 4, 5]
        assert [i.body["message"] for i in got] == [f"m{i}" for i in range(5)]
        await post(client, "live", "next")
        assert positions(await items(v, 1)) == [6]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_resume_continues_exactly_after_its_position(server, client, transport):
    await post(client, "resume", *[f"m{i}" for i in range(6)])
    async with viewer(transport, server, "resume", after=3) as v:
        assert positions(await items(v, 3)) == [4, 5, 6]
        await post(client, "resume", "live")
        assert positions(await items(v, 1)) == [7]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_new_viewer_gets_the_backlog_then_live_comments(server, client, transport):
    await post(client, "backlog", *[f"m{i}" for i in range(5)])
    async with viewer(transport, server, "backlog", backlog=2) as v:
        assert positions(await items(v, 2)) == [4, 5]
        await post(client, "backlog", "live")
        assert positions(await items(v, 1)) == [6]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_deletion_is_an_event_and_a_replay_carries_a_tombstone(server, client, transport):
    await post(client, "del", "one", "two", "three")
    async with viewer(transport, server, "del", after=3) as v:
        r = await client.delete("/comments/del/2", headers=moderator("del"))
        assert r.status_code in (200, 204), r.text
        (deleted,) = await items(v, 1)
        assert (deleted.kind, deleted.position, deleted.body["seq"]) == ("deleted", 4, 2)
    async with viewer(transport, server, "del", after=0) as v:
        got = await items(v, 4)
        assert positions(got) == [1, 2, 3, 4]
        assert [i.kind for i in got] == ["comment", "deleted", "comment", "deleted"]
        assert got[1].body["seq"] == 2 and "two" not in json.dumps(got[1].body)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_pin_reaches_viewers_and_new_viewers_get_it_at_connect(server, client, transport):
    await post(client, "pin", "pin me", "other")
    async with viewer(transport, server, "pin") as v:
        r = await client.put("/videos/pin/pin", json={"seq": 1}, headers=moderator("pin"))
        assert r.status_code == 200, r.text
        (pinned,) = await items(v, 1)
        assert (pinned.kind, pinned.position) == ("pinned", 3)
        assert pinned.body["comment"]["message"] == "pin me"
    async with viewer(transport, server, "pin") as v:
        (snapshot,) = await items(v, 1)
        assert (snapshot.kind, snapshot.position) == ("pinned", None)  # not a position
        assert snapshot.body["comment"]["seq"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_viewers_are_told_how_many_watch(settings, transport):
    async with run_server(settings.replace(viewer_count_seconds=0.2)) as server:
        async with viewer(transport, server, "count") as a, viewer(transport, server, "count"):
            with trio.fail_after(10):
                while True:
                    (count,) = await items(a, 1, kinds=("viewers",))
                    if count.body["count"] == 2:
                        break
            assert count.position is None


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_bad_resume_position_is_refused_with_a_json_400(server, transport):
    if transport == "sse":
        async with server.client() as client:
            r = await client.get("/comments/v/stream", headers={"Last-Event-ID": "nope"})
        assert r.status_code == 400
        assert r.json()["error"]["code"]
        return
    url = server.url.replace("http://", "ws://", 1) + "/comments/v/ws?last_event_id=nope"
    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(url):
            pass
    assert refused.value.status_code == 400
    assert json.loads(refused.value.body)["error"]["code"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_viewer_that_leaves_holds_nothing(server, client, transport):
    svc = server.service
    async with viewer(transport, server, "leave") as v:
        await post(client, "leave", "hi")
        await items(v, 1)
        assert svc.gate.streams_open() == 1
        assert svc.registry.statistics().viewers == 1
    with trio.fail_after(5):
        while svc.gate.streams_open() or svc.registry.statistics().viewers:  # noqa: ASYNC110
            await trio.sleep(0.01)  # statistics() snapshots have no event to wait on
