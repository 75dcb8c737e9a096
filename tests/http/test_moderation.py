"""Moderation on one node: roles, deleting, bans, chat settings, the pin, the log,
and bad input, through the real server (in-process) on the test Postgres."""

from __future__ import annotations

import contextlib
import json

import pytest
import trio
from trio_websocket import open_websocket_url

from ..conftest import run_server
from ..support import SSEReader, auth, moderator, token


@contextlib.asynccontextmanager
async def open_stream(client, video: str, headers=None, params=None):
    async with client.stream(
        "GET", f"/comments/{video}/stream", headers=headers or {}, params=params or {}
    ) as response:
        assert response.status_code == 200
        yield SSEReader(response)


async def post(client, video: str, message: str, user: str = "alice") -> dict:
    r = await client.post(f"/comments/{video}", json={"message": message}, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


async def events(reader: SSEReader, n: int, within: float = 5) -> list:
    """The next ``n`` events that have an id (comments and moderation events)."""
    out = []
    with trio.fail_after(within):
        while len(out) < n:
            ev = await reader.next_event()
            if ev.id is not None:
                out.append(ev)
    return out


async def history(client, video: str) -> list[dict]:
    return (await client.get(f"/comments/{video}", params={"pagesize": 500})).json()["comments"]


# -- roles --


async def test_deleting_needs_a_token_and_the_author_or_a_moderator_of_that_video(client):
    for i in range(6):
        await post(client, "v", f"m{i}", user="alice")
    assert (await client.delete("/comments/v/1")).status_code == 401
    r = await client.delete("/comments/v/1", headers=auth("mallory"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await client.delete("/comments/v/1", headers=moderator("other-video"))
    assert r.status_code == 403
    # a roles claim that is not a list of strings grants nothing
    r = await client.delete("/comments/v/1", headers=auth("mallory", {"moderator": True}))
    assert r.status_code == 403
    assert (await client.delete("/comments/v/1", headers=auth("alice"))).status_code == 204
    assert (await client.delete("/comments/v/2", headers=moderator("v"))).status_code == 204
    assert (await client.delete("/comments/v/3", headers=moderator())).status_code == 204
    # the roles claim may also be a space-separated string
    mod = auth("m2", "viewer moderator:v")  # type: ignore[arg-type]
    assert (await client.delete("/comments/v/4", headers=mod)).status_code == 204
    assert [c["seq"] for c in await history(client, "v")] == [6, 5]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/videos/v/bans", {"user_id": "x"}),
        ("GET", "/videos/v/bans", None),
        ("DELETE", "/videos/v/bans/x", None),
        ("PATCH", "/videos/v/settings", {"closed": True}),
        ("PUT", "/videos/v/pin", {"seq": 1}),
        ("DELETE", "/videos/v/pin", None),
        ("GET", "/videos/v/moderation", None),
    ],
)
async def test_moderator_endpoints_refuse_anyone_else(client, method, path, body):
    await post(client, "v", "hello")
    kw = {} if body is None else {"json": body}
    r = await client.request(method, path, **kw)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    for headers in (auth("alice"), moderator("w")):
        r = await client.request(method, path, headers=headers, **kw)
        assert r.status_code == 403, (headers, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    r = await client.request(method, path, headers=moderator("v"), **kw)
    # allowed (x was never banned: 404 is the answer a moderator gets)
    assert r.status_code < 300 or (path.endswith("/x") and r.status_code == 404), r.text


# -- deleting --


async def test_deleted_comment_leaves_history_and_since_and_viewers_get_deleted(client):
    for i in range(3):
        await post(client, "v", f"m{i}")
    async with open_stream(client, "v", params={"backlog": 3}) as reader:
        assert [e.id for e in await events(reader, 3)] == [1, 2, 3]
        assert (await client.delete("/comments/v/2", headers=moderator())).status_code == 204
        (ev,) = await events(reader, 1)
        assert (ev.id, ev.event, ev.json()) == (4, "deleted", {"video_id": "v", "seq": 2})
        # comments keep going after the event, in the same order
        c = await post(client, "v", "after")
        assert c["seq"] == 5
        (ev,) = await events(reader, 1)
        assert (ev.id, ev.event) == (5, "comment")
    assert [c["seq"] for c in await history(client, "v")] == [5, 3, 1]
    since = (await client.get("/comments/v", params={"since": 0})).json()
    assert [c["seq"] for c in since["comments"]] == [1, 3, 5]
    assert (await client.delete("/comments/v/2", headers=moderator())).status_code == 404
    assert (await client.delete("/comments/v/4", headers=moderator())).status_code == 404
    assert (await client.delete("/comments/v/99", headers=moderator())).status_code == 404
    assert (await client.delete("/comments/nope/1", headers=moderator())).status_code == 404
    for bad in ("abc", "0", "-1", "1.5", "99999999999999999999999"):
        r = await client.delete(f"/comments/v/{bad}", headers=moderator())
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_seq"
    r = await client.delete("/comments/bad$id/1", headers=moderator())
    assert r.status_code == 400


@pytest.mark.parametrize("ring_size", [1000, 2], ids=["ring", "postgres"])
async def test_resumed_viewer_never_gets_deleted_text_and_one_that_saw_it_gets_the_deletion(
    settings, ring_size
):
    async with run_server(settings.replace(ring_size=ring_size)) as server, server.client() as c:
        await post(c, "v", "first")
        await post(c, "v", "SECRET-abuse")
        await post(c, "v", "third")
        async with open_stream(c, "v", headers={"Last-Event-ID": "0"}) as reader:
            assert [e.id for e in await events(reader, 3)] == [1, 2, 3]  # saw it
        assert (await c.delete("/comments/v/2", headers=moderator())).status_code == 204
        await post(c, "v", "fifth")
        # resumed from before the deletion: seq 2 comes as a tombstone, never the text
        async with open_stream(c, "v", headers={"Last-Event-ID": "1"}) as reader:
            got = await events(reader, 4)
        assert [(e.id, e.event) for e in got] == [
            (2, "deleted"),
            (3, "comment"),
            (4, "deleted"),
            (5, "comment"),
        ]
        assert got[0].json() == got[2].json() == {"video_id": "v", "seq": 2}
        assert all("SECRET" not in e.data for e in got)
        # it saw seq 2 before disconnecting: it gets the deletion when it resumes
        async with open_stream(c, "v", headers={"Last-Event-ID": "3"}) as reader:
            got = await events(reader, 2)
        assert [(e.id, e.event, e.json()["seq"]) for e in got] == [
            (4, "deleted", 2),
            (5, "comment", 5),
        ]
        # a new viewer's backlog has no text of it either
        async with open_stream(c, "v", params={"backlog": 10}) as reader:
            got = await events(reader, min(5, ring_size))  # the backlog comes from the ring
        assert all("SECRET" not in e.data for e in got)


async def test_websocket_viewers_get_deletions_and_resume_exactly(server, client):
    await post(client, "v", "one")
    await post(client, "v", "two")
    url = server.url.replace("http", "ws") + "/comments/v/ws?backlog=2"
    with trio.fail_after(10):
        async with open_websocket_url(url) as ws:
            got = []
            while len(got) < 2:
                m = json.loads(await ws.get_message())
                if m["type"] == "comment":
                    got.append(m)
            assert (await client.delete("/comments/v/1", headers=auth("alice"))).status_code == 204
            while (m := json.loads(await ws.get_message()))["type"] != "deleted":
                pass
            assert m == {"type": "deleted", "id": 3, "video_id": "v", "seq": 1}
        resume = server.url.replace("http", "ws") + "/comments/v/ws?last_event_id=0"
        async with open_websocket_url(resume) as ws:
            seen = []
            while len(seen) < 3:
                m = json.loads(await ws.get_message())
                if m["type"] != "viewers":
                    seen.append(m)
            assert seen[0] == {"type": "deleted", "id": 1, "video_id": "v", "seq": 1}
            assert seen[1]["comment"]["message"] == "two"
            assert seen[2] == {"type": "deleted", "id": 3, "video_id": "v", "seq": 1}


# -- bans --


async def test_ban_refuses_posts_lists_lifts_and_can_delete_the_users_comments(server, client):
    await post(client, "v", "fine", user="bob")
    await post(client, "v", "spam 1", user="spammer")
    await post(client, "v", "spam 2", user="spammer")
    async with open_stream(client, "v") as reader:
        r = await client.post(
            "/videos/v/bans",
            json={"user_id": "spammer", "seconds": None, "delete_comments": True},
            headers=moderator("v"),
        )
        assert r.status_code == 201, r.text
        ban = r.json()
        assert ban["user_id"] == "spammer" and ban["expires_at"] is None
        assert ban["created_by"] == "mod" and ban["deleted"] == [2, 3]
        got = await events(reader, 2)
        assert [(e.event, e.json()["seq"]) for e in got] == [("deleted", 2), ("deleted", 3)]
    assert [c["user_id"] for c in await history(client, "v")] == ["bob"]
    r = await client.post("/comments/v", json={"message": "again"}, headers=auth("spammer"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "banned"
    # only this video
    assert (
        await client.post("/comments/w", json={"message": "x"}, headers=auth("spammer"))
    ).status_code == 201
    # and over the WebSocket too
    url = server.url.replace("http", "ws") + f"/comments/v/ws?token={token('spammer')}"
    with trio.fail_after(10):
        async with open_websocket_url(url) as ws:
            await ws.send_message(json.dumps({"type": "post", "message": "via ws"}))
            while (m := json.loads(await ws.get_message()))["type"] != "error":
                pass
            assert m["status"] == 403 and m["error"]["code"] == "banned"
    listed = (await client.get("/videos/v/bans", headers=moderator())).json()["bans"]
    assert [b["user_id"] for b in listed] == ["spammer"]
    assert (await client.delete("/videos/v/bans/spammer", headers=moderator())).status_code == 204
    assert (await client.delete("/videos/v/bans/spammer", headers=moderator())).status_code == 404
    await post(client, "v", "reformed", user="spammer")
    assert (await client.get("/videos/v/bans", headers=moderator())).json()["bans"] == []
    r = await client.delete("/videos/v/bans/a%00b", headers=moderator())
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_user_id"
    r = await client.delete("/videos/v/bans/" + "x" * 200, headers=moderator())
    assert r.status_code == 400


async def test_a_timed_ban_ends_by_itself(client):
    await post(client, "v", "hi", user="t")
    r = await client.post(
        "/videos/v/bans", json={"user_id": "t", "seconds": 1}, headers=moderator()
    )
    assert r.status_code == 201 and r.json()["expires_at"] is not None
    r = await client.post("/comments/v", json={"message": "x"}, headers=auth("t"))
    assert r.status_code == 403
    with trio.fail_after(5):
        while True:
            await trio.sleep(0.2)
            r = await client.post("/comments/v", json={"message": "x"}, headers=auth("t"))
            if r.status_code == 201:
                break
            assert r.status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b'{"user_id": ""}', 422, "invalid_user_id"),
        (b'{"user_id": "   "}', 422, "invalid_user_id"),
        (b'{"user_id": 7}', 422, "invalid_user_id"),
        (b'{"seconds": 5}', 422, "invalid_user_id"),
        (b'{"user_id": "u", "seconds": -5}', 422, "invalid_seconds"),
        (b'{"user_id": "u", "seconds": 0}', 422, "invalid_seconds"),
        (b'{"user_id": "u", "seconds": "10"}', 422, "invalid_seconds"),
        (b'{"user_id": "u", "seconds": true}', 422, "invalid_seconds"),
        (b'{"user_id": "u", "seconds": 1e400}', 422, "invalid_seconds"),
        (b'{"user_id": "u", "delete_comments": "yes"}', 422, "invalid_delete_comments"),
        (b'{"user_id": "u", "sekonds": 5}', 422, "unknown_field"),
        (b'{"user_id": "' + b"x" * 200 + b'"}', 422, "invalid_user_id"),
        (b'{"user_id": "a\\u0000b"}', 422, "invalid_user_id"),
        (b'{"user_id": "\\ud800"}', 422, "invalid_user_id"),
        (b'{"user_id": "u", "seconds": 1e300}', 422, "invalid_seconds"),
    ],
)
async def test_bad_ban_requests_get_clear_errors(client, body, status, code):
    r = await client.post(
        "/videos/v/bans",
        content=body,
        headers={**moderator(), "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


# -- chat settings --


async def test_settings_default_to_the_servers_and_close_limit_and_slow_the_chat(client):
    r = await client.get("/videos/v/settings")  # anyone may read them
    assert r.status_code == 200
    assert r.json() == {
        "video_id": "v",
        "closed": False,
        "slow_mode_seconds": 0.0,
        "max_message_chars": 2000,
    }
    async with open_stream(client, "v") as reader:
        r = await client.patch("/videos/v/settings", json={"closed": True}, headers=moderator())
        assert r.status_code == 200 and r.json()["closed"] is True
        (ev,) = await events(reader, 1)
        assert ev.event == "settings" and ev.json()["closed"] is True
    r = await client.post("/comments/v", json={"message": "x"}, headers=auth())
    assert r.status_code == 403 and r.json()["error"]["code"] == "chat_closed"
    assert (await client.get("/videos/v/settings")).json()["closed"] is True
    r = await client.patch(
        "/videos/v/settings",
        json={"closed": False, "max_message_chars": 5, "slow_mode_seconds": 30},
        headers=moderator(),
    )
    assert r.json() == {
        "video_id": "v",
        "closed": False,
        "slow_mode_seconds": 30.0,
        "max_message_chars": 5,
    }
    r = await client.post("/comments/v", json={"message": "too long"}, headers=auth())
    assert r.status_code == 422 and r.json()["error"]["code"] == "message_too_long"
    await post(client, "v", "short")
    r = await client.post("/comments/v", json={"message": "again"}, headers=auth())
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 20
    # null goes back to the server's setting
    r = await client.patch(
        "/videos/v/settings", json={"slow_mode_seconds": None}, headers=moderator()
    )
    assert r.json()["slow_mode_seconds"] == 0.0 and r.json()["max_message_chars"] == 5
    await post(client, "v", "ok")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{", 400, "invalid_json"),
        (b'"closed"', 400, "invalid_json"),
        (b"{}", 422, "empty_patch"),
        (b'{"closed": "yes"}', 422, "invalid_closed"),
        (b'{"closed": 1}', 422, "invalid_closed"),
        (b'{"slow_mode_seconds": -1}', 422, "invalid_slow_mode_seconds"),
        (b'{"slow_mode_seconds": "5"}', 422, "invalid_slow_mode_seconds"),
        (b'{"max_message_chars": 0}', 422, "invalid_max_message_chars"),
        (b'{"max_message_chars": 2001}', 422, "invalid_max_message_chars"),
        (b'{"max_message_chars": 5.5}', 422, "invalid_max_message_chars"),
        (b'{"closd": true}', 422, "unknown_field"),
    ],
)
async def test_bad_settings_get_clear_errors(client, body, status, code):
    r = await client.patch(
        "/videos/v/settings",
        content=body,
        headers={**moderator(), "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


# -- the pin --


async def test_pin_reaches_viewers_new_viewers_and_history_and_goes_with_its_comment(client):
    await post(client, "v", "welcome, rules: be nice", user="host")
    await post(client, "v", "hello")
    async with open_stream(client, "v") as reader:
        r = await client.put("/videos/v/pin", json={"seq": 1}, headers=moderator())
        assert r.status_code == 200, r.text
        assert r.json()["pinned"]["message"] == "welcome, rules: be nice"
        (ev,) = await events(reader, 1)
        assert (ev.id, ev.event) == (3, "pinned")
        assert ev.json()["comment"]["seq"] == 1
    # a new viewer gets the pin at connect (no id: not a stream position)
    async with open_stream(client, "v") as reader:
        with trio.fail_after(5):
            while (ev := await reader.next_event()).event != "pinned":
                pass
        assert ev.id is None and ev.json()["comment"]["seq"] == 1
    page = (await client.get("/comments/v")).json()
    assert page["pinned"]["seq"] == 1 and [c["seq"] for c in page["comments"]] == [2, 1]
    # deleting the pinned comment unpins it, and replays of the pin lose its text
    assert (await client.delete("/comments/v/1", headers=moderator())).status_code == 204
    assert (await client.get("/comments/v")).json()["pinned"] is None
    async with open_stream(client, "v", headers={"Last-Event-ID": "0"}) as reader:
        got = await events(reader, 4)
    assert [e.event for e in got] == ["deleted", "comment", "pinned", "deleted"]
    assert got[2].json() == {"video_id": "v", "comment": None}
    assert all("rules" not in e.data for e in got)
    # pin, then unpin: viewers get pinned null
    await client.put("/videos/v/pin", json={"seq": 2}, headers=moderator())
    async with open_stream(client, "v", headers={"Last-Event-ID": "5"}) as reader:
        assert (await client.delete("/videos/v/pin", headers=moderator())).status_code == 204
        (ev,) = await events(reader, 1)
        assert ev.event == "pinned" and ev.json() == {"video_id": "v", "comment": None}
    assert (await client.get("/comments/v")).json()["pinned"] is None
    assert (await client.delete("/videos/v/pin", headers=moderator())).status_code == 204


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"seq": 99}', 404),
        (b'{"seq": 0}', 422),
        (b'{"seq": "1"}', 422),
        (b"{}", 422),
        (b'{"seq": true}', 422),
        (b'{"seq": 1, "x": 1}', 422),
        (b"nope", 400),
    ],
)
async def test_bad_pins_get_clear_errors(client, body, status):
    await post(client, "v", "one")
    r = await client.put(
        "/videos/v/pin", content=body, headers={**moderator(), "Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) == {"code", "message"}


# -- the log --


async def test_every_action_is_in_the_moderation_log_newest_first(client):
    await post(client, "v", "a", user="alice")
    await post(client, "v", "b", user="bob")
    await client.delete("/comments/v/1", headers=auth("alice"))
    await client.post("/videos/v/bans", json={"user_id": "bob", "seconds": 60}, headers=moderator())
    await client.delete("/videos/v/bans/bob", headers=moderator())
    await client.patch("/videos/v/settings", json={"closed": True}, headers=moderator())
    await client.put("/videos/v/pin", json={"seq": 2}, headers=moderator())
    await client.delete("/videos/v/pin", headers=moderator())
    r = await client.get("/videos/v/moderation", headers=moderator("v"))
    assert r.status_code == 200
    actions = r.json()["actions"]
    assert [(a["action"], a["actor"], a["target"]) for a in actions] == [
        ("unpin", "mod", None),
        ("pin", "mod", "2"),
        ("settings", "mod", None),
        ("unban", "mod", "bob"),
        ("ban", "mod", "bob"),
        ("delete", "alice", "1"),
    ]
    assert actions[2]["detail"] == {"closed": True}
    assert actions[4]["detail"]["seconds"] == 60
    assert all(a["created_at"].endswith("Z") for a in actions)
    page = (await client.get("/videos/v/moderation?pagesize=2", headers=moderator())).json()
    assert [a["action"] for a in page["actions"]] == ["unpin", "pin"]
    cursor = page["next_cursor"]
    rest = (await client.get(f"/videos/v/moderation?cursor={cursor}", headers=moderator())).json()
    assert [a["action"] for a in rest["actions"]] == ["settings", "unban", "ban", "delete"]
    r = await client.get("/videos/v/moderation?cursor=x", headers=moderator())
    assert r.status_code == 400
    metrics = (await client.get("/metrics")).text
    for action in ("delete", "ban", "unban", "settings", "pin", "unpin"):
        assert f'livehub_moderation_actions_total{{action="{action}"}} 1.0' in metrics
