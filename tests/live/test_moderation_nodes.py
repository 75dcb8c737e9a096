"""Moderation across two livehub processes on one Postgres: every action taken on one
node is visible on the other within a second, resumed viewers never get deleted text,
and bans and a closed chat hold on every node."""

from __future__ import annotations

import contextlib

import httpx
import pytest
import trio

from ..support import SSEReader, auth, moderator, start_livehub

pytestmark = pytest.mark.slow

WITHIN_SECONDS = 1.0  # the bound for an action to reach every node


@pytest.fixture
def nodes(dsn):
    started = []
    try:
        for _ in range(2):
            started.append(start_livehub(dsn))
        yield started
    finally:
        for node in started:
            node.stop()


@contextlib.asynccontextmanager
async def stream(url: str, video: str, headers=None):
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with client.stream(
            "GET", f"/comments/{video}/stream", headers=headers or {}
        ) as response:
            assert response.status_code == 200
            yield SSEReader(response)


async def next_with_id(reader: SSEReader, within: float = 5):
    with trio.fail_after(within):
        while (ev := await reader.next_event()).id is None:
            pass
        return ev


async def post(c: httpx.AsyncClient, url: str, video: str, msg: str, user: str = "alice"):
    return await c.post(f"{url}/comments/{video}", json={"message": msg}, headers=auth(user))


async def until_status(c, url: str, video: str, user: str, status: int) -> float:
    """Post as ``user`` until the answer is ``status``; the seconds it took."""
    started = trio.current_time()
    with trio.fail_after(5):
        while True:
            r = await post(c, url, video, "probe", user)
            if r.status_code == status:
                return trio.current_time() - started
            await trio.sleep(0.05)


async def test_a_deletion_on_one_node_reaches_viewers_on_both_within_a_second(nodes):
    a, b = nodes
    async with httpx.AsyncClient(timeout=10) as c:
        for i in range(3):
            assert (await post(c, a.url, "v", f"m{i}")).status_code == 201
        async with stream(a.url, "v", {"Last-Event-ID": "0"}) as ra:
            async with stream(b.url, "v", {"Last-Event-ID": "0"}) as rb:
                for reader in (ra, rb):
                    assert [(await next_with_id(reader)).id for _ in range(3)] == [1, 2, 3]
                started = trio.current_time()
                r = await c.delete(f"{a.url}/comments/v/2", headers=moderator())
                assert r.status_code == 204
                for reader in (rb, ra):
                    ev = await next_with_id(reader, WITHIN_SECONDS)
                    assert (ev.id, ev.event, ev.json()["seq"]) == (4, "deleted", 2)
                assert trio.current_time() - started < WITHIN_SECONDS
                # comments after it keep the one order on both nodes
                assert (await post(c, b.url, "v", "later")).json()["seq"] == 5
                for reader in (ra, rb):
                    assert (await next_with_id(reader)).id == 5
        for url in (a.url, b.url):
            page = (await c.get(f"{url}/comments/v")).json()
            assert [x["seq"] for x in page["comments"]] == [5, 3, 1]


async def test_viewer_resuming_on_the_other_node_never_gets_deleted_text(nodes):
    a, b = nodes
    async with httpx.AsyncClient(timeout=10) as c:
        await post(c, a.url, "v", "hello")
        await post(c, a.url, "v", "SECRET-abuse")
        await post(c, a.url, "v", "bye")
        # b's actor is live and has seen the comment before it is deleted on a
        async with stream(b.url, "v", {"Last-Event-ID": "0"}) as rb:
            assert [(await next_with_id(rb)).id for _ in range(3)] == [1, 2, 3]
            assert (await c.delete(f"{a.url}/comments/v/2", headers=auth("alice"))).status_code
            assert (await next_with_id(rb, WITHIN_SECONDS)).event == "deleted"
        for url in (b.url, a.url):
            async with stream(url, "v", {"Last-Event-ID": "1"}) as r:
                got = [await next_with_id(r) for _ in range(3)]
            assert [(e.id, e.event) for e in got] == [
                (2, "deleted"),
                (3, "comment"),
                (4, "deleted"),
            ]
            assert all("SECRET" not in e.data for e in got)
            async with stream(url, "v", {"Last-Event-ID": "3"}) as r:
                ev = await next_with_id(r)
            assert (ev.id, ev.event, ev.json()["seq"]) == (4, "deleted", 2)


async def test_a_ban_on_one_node_holds_on_the_other_within_a_second(nodes):
    a, b = nodes
    async with httpx.AsyncClient(timeout=10) as c:
        # b has the video's rules cached already: the slow case
        assert (await post(c, b.url, "v", "hi", "troll")).status_code == 201
        r = await c.post(
            f"{a.url}/videos/v/bans",
            json={"user_id": "troll", "seconds": None},
            headers=moderator("v"),
        )
        assert r.status_code == 201
        assert await until_status(c, b.url, "v", "troll", 403) < WITHIN_SECONDS
        r = await post(c, b.url, "v", "x", "troll")
        assert r.json()["error"]["code"] == "banned"
        assert (await post(c, a.url, "v", "x", "troll")).status_code == 403
        assert (await post(c, b.url, "v", "fine", "bob")).status_code == 201
        listed = (await c.get(f"{b.url}/videos/v/bans", headers=moderator())).json()
        assert [x["user_id"] for x in listed["bans"]] == ["troll"]
        r = await c.delete(f"{b.url}/videos/v/bans/troll", headers=moderator())
        assert r.status_code == 204
        assert await until_status(c, a.url, "v", "troll", 201) < WITHIN_SECONDS


async def test_closing_the_chat_on_one_node_holds_on_the_other_and_viewers_see_it(nodes):
    a, b = nodes
    async with httpx.AsyncClient(timeout=10) as c:
        assert (await post(c, a.url, "v", "open")).status_code == 201
        async with stream(a.url, "v") as ra:
            r = await c.patch(
                f"{b.url}/videos/v/settings", json={"closed": True}, headers=moderator()
            )
            assert r.status_code == 200
            assert await until_status(c, a.url, "v", "alice", 403) < WITHIN_SECONDS
            ev = await next_with_id(ra, WITHIN_SECONDS)
            assert ev.event == "settings" and ev.json()["closed"] is True
        r = await post(c, a.url, "v", "x")
        assert r.json()["error"]["code"] == "chat_closed"
        assert (await c.get(f"{a.url}/videos/v/settings")).json()["closed"] is True
        await c.patch(
            f"{a.url}/videos/v/settings",
            json={"closed": False, "max_message_chars": 3},
            headers=moderator(),
        )
        assert await until_status(c, b.url, "v", "alice", 422) < WITHIN_SECONDS


async def test_a_pin_on_one_node_reaches_viewers_and_newcomers_on_the_other(nodes):
    a, b = nodes
    async with httpx.AsyncClient(timeout=10) as c:
        await post(c, a.url, "v", "read the rules", "host")
        async with stream(b.url, "v") as rb:
            r = await c.put(f"{a.url}/videos/v/pin", json={"seq": 1}, headers=moderator())
            assert r.status_code == 200
            ev = await next_with_id(rb, WITHIN_SECONDS)
            assert ev.event == "pinned" and ev.json()["comment"]["message"] == "read the rules"
        async with stream(b.url, "v") as rb:
            with trio.fail_after(5):
                while (ev := await rb.next_event()).event != "pinned":
                    pass
            assert ev.json()["comment"]["seq"] == 1
        assert (await c.get(f"{b.url}/comments/v")).json()["pinned"]["seq"] == 1
        log = (await c.get(f"{b.url}/videos/v/moderation", headers=moderator())).json()
        assert [x["action"] for x in log["actions"]] == ["pin"]


async def test_deleting_while_writers_post_on_both_nodes_keeps_one_gapless_stream(nodes):
    """Deletions take seqs from the same counter row as inserts, on both nodes at once:
    no deadlock, and every viewer gets ids 1..head exactly once, in order."""
    a, b = nodes
    writers, per_writer = 4, 30
    accepted: list[dict] = []
    deleted: list[int] = []
    with trio.fail_after(60):
        async with stream(a.url, "hot") as ra, stream(b.url, "hot") as rb:
            async with httpx.AsyncClient(timeout=10) as c:

                async def writer(w: int) -> None:
                    for k in range(per_writer):
                        r = await post(c, (a.url, b.url)[(w + k) % 2], "hot", f"w{w}-{k}")
                        assert r.status_code == 201, r.text
                        accepted.append(r.json())

                async def deleter() -> None:
                    done = 0
                    while done < writers * per_writer:
                        if done < len(accepted):
                            c_ = accepted[done]
                            if done % 3 == 0:
                                url = (a.url, b.url)[done % 2]
                                r = await c.delete(
                                    f"{url}/comments/hot/{c_['seq']}", headers=moderator()
                                )
                                assert r.status_code == 204, r.text
                                deleted.append(c_["seq"])
                            done += 1
                        else:
                            await trio.sleep(0.005)

                async with trio.open_nursery() as nursery:
                    for w in range(writers):
                        nursery.start_soon(writer, w)
                    nursery.start_soon(deleter)
            head = writers * per_writer + len(deleted)
            for reader in (ra, rb):
                got = [await next_with_id(reader, 20) for _ in range(head)]
                assert [e.id for e in got] == list(range(1, head + 1))
                targets = sorted(e.json()["seq"] for e in got if e.event == "deleted")
                assert targets == sorted(deleted)
    async with httpx.AsyncClient(timeout=10) as c:
        page = (await c.get(f"{b.url}/comments/hot", params={"since": 0, "pagesize": 500})).json()
    assert sorted(x["seq"] for x in page["comments"]) == sorted(
        x["seq"] for x in accepted if x["seq"] not in set(deleted)
    )
