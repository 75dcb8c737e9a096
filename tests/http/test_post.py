"""POST /comments/{video_id}: storing comments, seq allocation, and every bad input."""

from __future__ import annotations

import time

import trio

from livehub.identity.auth import mint

from ..support import SECRET, auth, token


async def test_post_returns_the_stored_comment_with_user_from_token(client):
    r = await client.post(
        "/comments/launch-1",
        json={"message": "  first!  ", "user_id": "mallory", "seq": 99},
        headers=auth("alice"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["video_id"] == "launch-1"
    assert body["seq"] == 1
    assert body["user_id"] == "alice"  # from the token, never from the body
    assert body["message"] == "first!"
    assert body["created_at"].endswith("Z")
    page = (await client.get("/comments/launch-1")).json()
    assert page["comments"] == [body]


async def test_200_concurrent_posts_get_seqs_1_to_200_exactly(client):
    seqs: list[int] = []

    async def post(i: int) -> None:
        r = await client.post("/comments/hot", json={"message": f"m{i}"}, headers=auth(f"u{i % 7}"))
        assert r.status_code == 201, r.text
        seqs.append(r.json()["seq"])

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(post, i)
    assert sorted(seqs) == list(range(1, 201))
    stored = (await client.get("/comments/hot?since=0&pagesize=500")).json()["comments"]
    assert [c["seq"] for c in stored] == list(range(1, 201))
    assert sorted(c["message"] for c in stored) == sorted(f"m{i}" for i in range(200))


async def test_concurrent_posts_to_many_videos_share_transactions(server, client):
    async def post(video: str, i: int) -> None:
        r = await client.post(f"/comments/{video}", json={"message": f"m{i}"}, headers=auth())
        assert r.status_code == 201, r.text

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for v in range(50):
                for i in range(4):
                    nursery.start_soon(post, f"v{v}", i)
    for v in range(50):
        page = (await client.get(f"/comments/v{v}?since=0")).json()["comments"]
        assert [c["seq"] for c in page] == [1, 2, 3, 4]
    # 200 posts over 50 videos went through far fewer transactions.
    assert server.service.registry.statistics().merged_transactions < 150


async def test_videos_have_independent_sequences(client):
    for video in ("a", "b", "a", "a", "b"):
        await client.post(f"/comments/{video}", json={"message": "x"}, headers=auth())
    a = (await client.get("/comments/a")).json()["comments"]
    b = (await client.get("/comments/b")).json()["comments"]
    assert [c["seq"] for c in a] == [3, 2, 1]
    assert [c["seq"] for c in b] == [2, 1]


def _expired() -> str:
    return mint("alice", SECRET, ttl_seconds=60, now=time.time() - 3600)


BAD_AUTH = [
    None,
    "Bearer",
    "Basic YWxpY2U6cHc=",
    "Bearer not-a-jwt",
    f"Bearer {token('alice', secret='another-secret-of-enough-length-012345')}",
    f"Bearer {_expired()}",
]


async def test_bad_tokens_get_401_and_store_nothing(client):
    for header in BAD_AUTH:
        headers = {} if header is None else {"Authorization": header}
        r = await client.post("/comments/v", json={"message": "hi"}, headers=headers)
        assert r.status_code == 401, (header, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/comments/v")).json()["comments"] == []


BAD_BODIES = [
    (b"{not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (b'"just a string"', 400, "invalid_json"),
    (b"\xff\xfe{}", 400, "invalid_utf8"),
    (b'{"message": "caf\xe9"}', 400, "invalid_utf8"),
    (b"{}", 422, "message_missing"),
    (b'{"text": "hi"}', 422, "message_missing"),
    (b'{"message": 42}', 422, "message_not_string"),
    (b'{"message": null}', 422, "message_not_string"),
    (b'{"message": ["a"]}', 422, "message_not_string"),
    (b'{"message": ""}', 422, "message_empty"),
    (b'{"message": "   \\n\\t "}', 422, "message_empty"),
    (b'{"message": "a\\u0000b"}', 422, "message_invalid"),
    (b'{"message": "\\ud800"}', 422, "message_invalid"),
    (('{"message": "' + "x" * 2001 + '"}').encode(), 422, "message_too_long"),
    (b"", 400, "invalid_json"),
    # Python refuses integers past 4,300 digits with a ValueError (issue 12: a 500)
    (b'{"message": "hi", "n": ' + b"7" * 5000 + b"}", 400, "invalid_json"),
    (b"9" * 5000, 400, "invalid_json"),
]


async def test_bad_bodies_get_a_clear_json_error_and_store_nothing(client):
    for body, status, code in BAD_BODIES:
        r = await client.post(
            "/comments/v",
            content=body,
            headers={**auth(), "Content-Type": "application/json"},
        )
        assert r.status_code == status, (body[:40], r.status_code, r.text)
        assert r.json()["error"]["code"] == code, (body[:40], r.text)
        assert r.json()["error"]["message"]
    assert (await client.get("/comments/v")).json()["comments"] == []


async def test_message_of_exactly_the_limit_is_accepted(client):
    r = await client.post("/comments/v", json={"message": "é" * 2000}, headers=auth())
    assert r.status_code == 201


async def test_wrong_content_type_is_415(client):
    r = await client.post(
        "/comments/v",
        content=b"message=hi",
        headers={**auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"


async def test_oversized_body_is_413_before_it_is_read_whole(client, server):
    big = b'{"message": "' + b"x" * (20 * 1024) + b'"}'
    r = await client.post(
        "/comments/v", content=big, headers={**auth(), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    # Without a Content-Length (chunked), it is cut off while streaming.
    async def chunks():
        yield b'{"message": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    r = await client.post(
        "/comments/v", content=chunks(), headers={**auth(), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert (await client.get("/comments/v")).json()["comments"] == []


async def test_bad_video_ids_are_400(client):
    for bad in ("a" * 65, "has space", "semi;colon", "dot.dot", "%C3%A9"):
        r = await client.post(f"/comments/{bad}", json={"message": "x"}, headers=auth())
        assert r.status_code == 400, (bad, r.status_code)
        assert r.json()["error"]["code"] == "invalid_video_id"
        r = await client.get(f"/comments/{bad}")
        assert r.status_code == 400, bad


async def test_unknown_route_and_method_get_json_errors(client):
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await client.delete("/comments/v")
    assert r.status_code == 405
    assert "error" in r.json()
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}  # what would work
    r = await client.post("/comments/v/stream", json={"message": "x"}, headers=auth())
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"].split(", ")


async def test_double_slash_paths_get_json_errors_not_redirects(client):
    for method, path in [
        ("POST", "/comments//stream"),
        ("GET", "/comments//stream"),
        ("POST", "//comments/v"),
        ("GET", "/comments/v//stream"),
    ]:
        r = await client.request(method, path, json={"message": "x"}, headers=auth())
        assert r.status_code in (400, 404, 405), (method, path, r.status_code)
        assert r.headers["content-type"] == "application/json", (method, path)
        assert r.json()["error"]["code"], (method, path)
    assert (await client.get("/comments/v")).json()["comments"] == []
