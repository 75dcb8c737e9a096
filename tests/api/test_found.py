"""What fuzzing the contract turned up, pinned down as plain tests."""

from __future__ import annotations

import trio


async def test_head_of_the_stream_is_its_head_not_starting(client):
    """A HEAD of the stream (Allow says GET, HEAD) answered 503 "this node is starting"
    on a running node; it gets the head a GET would."""
    with trio.fail_after(10):
        r = await client.head("/comments/v/stream")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.content == b""
        r = await client.head("/comments/not%20an%20id/stream")
        assert r.status_code == 400


async def test_a_plain_get_of_the_websocket_is_a_json_405(client):
    with trio.fail_after(10):
        r = await client.get("/comments/v/ws")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
