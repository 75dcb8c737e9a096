"""GET /comments/{video_id}/ws: what only the WebSocket does (posting over the socket, the
handshake, bad frames), with trio-websocket against the real server. What it shares
with SSE is held to one contract in tests/live/test_transport_contract.py."""

from __future__ import annotations

import itertools
import json
from urllib.parse import urlencode

import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from ..conftest import run_server
from ..support import auth, token


def ws_url(server, video: str, **params: object) -> str:
    query = "?" + urlencode(params) if params else ""
    return server.url.replace("http://", "ws://", 1) + f"/comments/{video}/ws" + query


async def receive(ws, within: float = 5) -> dict:
    """The next message that is not a heartbeat ping."""
    with trio.fail_after(within):
        while True:
            message = json.loads(await ws.get_message())
            if message["type"] not in ("ping", "viewers"):
                return message


async def comments(ws, n: int, within: float = 10) -> list[dict]:
    out = []
    with trio.fail_after(within):
        while len(out) < n:
            message = await receive(ws, within)
            assert message["type"] == "comment", message
            out.append(message["comment"])
    return out


POSTERS = itertools.count()  # a new user per post: no test here is about rate limits


async def post_http(client, video: str, messages: list[str]) -> None:
    with trio.fail_after(20):
        for m in messages:
            user = f"bob{next(POSTERS)}"
            r = await client.post(f"/comments/{video}", json={"message": m}, headers=auth(user))
            assert r.status_code == 201, r.text


async def wait_viewers(server, n: int) -> None:
    with trio.fail_after(5):
        while server.service.registry.statistics().viewers != n:  # noqa: ASYNC110
            await trio.sleep(0.01)  # a statistics() snapshot has no event to wait on


async def test_post_over_ws_is_acknowledged_stored_and_seen_by_every_viewer(server, client):
    headers = [("Authorization", f"Bearer {token('carol')}")]
    async with (
        open_websocket_url(ws_url(server, "chat", token=token("alice"))) as poster,
        open_websocket_url(ws_url(server, "chat"), extra_headers=headers) as other,
    ):
        await poster.send_message(json.dumps({"type": "post", "message": " hi ", "ref": 7}))
        first = await receive(poster)
        second = await receive(poster)
        by_type = {first["type"]: first, second["type"]: second}
        assert set(by_type) == {"posted", "comment"}  # the answer and the broadcast
        posted = by_type["posted"]
        assert posted["ref"] == 7
        assert posted["comment"]["seq"] == 1
        assert posted["comment"]["user_id"] == "alice"  # from the token
        assert posted["comment"]["message"] == "hi"  # validated like POST: trimmed
        assert by_type["comment"]["comment"] == posted["comment"]
        assert (await comments(other, 1)) == [posted["comment"]]

        await other.send_message(json.dumps({"type": "post", "message": "header auth"}))
        answer = await receive(other)
        while answer["type"] != "posted":
            answer = await receive(other)
        assert answer["comment"]["user_id"] == "carol"
        assert answer["comment"]["seq"] == 2
    stored = (await client.get("/comments/chat?since=0")).json()["comments"]
    assert [(c["seq"], c["user_id"]) for c in stored] == [(1, "alice"), (2, "carol")]


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"token": "not-a-jwt"}, []),
        ({"token": token("alice", secret="another-secret-of-enough-length-012345")}, []),
        ({}, [("Authorization", "Basic YWxpY2U6cHc=")]),
    ],
)
async def test_bad_token_is_refused_at_the_handshake_with_401(server, params, headers):
    with trio.fail_after(5), pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(ws_url(server, "v", **params), extra_headers=headers):
            pass
    assert rejected.value.status_code == 401
    assert json.loads(rejected.value.body)["error"]["code"] == "unauthorized"


async def test_bad_video_id_and_cursor_are_refused_with_400(server):
    for url in (ws_url(server, "bad.id"), ws_url(server, "v", last_event_id="-1")):
        with trio.fail_after(5), pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(url):
                pass
        assert rejected.value.status_code == 400, url


BAD_MESSAGES = [
    ("{not json", 400, "invalid_json"),
    ("[1, 2]", 400, "invalid_json"),
    ('{"type": "subscribe"}', 400, "unknown_type"),
    ('{"message": "no type"}', 400, "unknown_type"),
    ('{"type": "post"}', 422, "message_missing"),
    ('{"type": "post", "message": "   "}', 422, "message_empty"),
    ('{"type": "post", "message": 5}', 422, "message_not_string"),
    (json.dumps({"type": "post", "message": "x" * 2001}), 422, "message_too_long"),
    (json.dumps({"type": "post", "message": "x" * 17000}), 413, "payload_too_large"),
    ('{"type": "post", "message": "hi", "n": ' + "7" * 5000 + "}", 400, "invalid_json"),
]


async def test_bad_messages_get_error_answers_and_the_socket_stays_usable(server, client):
    async with open_websocket_url(ws_url(server, "bad", token=token("alice"))) as ws:
        for text, status, code in BAD_MESSAGES:
            await ws.send_message(text)
            answer = await receive(ws)
            assert answer["type"] == "error", (text[:30], answer)
            assert (answer["status"], answer["error"]["code"]) == (status, code), text[:30]
            assert answer["error"]["message"]
        await ws.send_message(json.dumps({"type": "post", "message": "still here", "ref": "r"}))
        answer = await receive(ws)
        while answer["type"] != "posted":
            answer = await receive(ws)
        assert answer["comment"]["seq"] == 1
    stored = (await client.get("/comments/bad")).json()["comments"]
    assert [c["message"] for c in stored] == ["still here"]


async def test_posting_without_a_token_gets_an_error_not_a_crash(server, client):
    async with open_websocket_url(ws_url(server, "anon")) as ws:
        await ws.send_message(json.dumps({"type": "post", "message": "hi", "ref": 1}))
        answer = await receive(ws)
        assert answer == {
            "type": "error",
            "error": {"code": "unauthorized", "message": answer["error"]["message"]},
            "status": 401,
            "ref": 1,
        }
        await post_http(client, "anon", ["from http"])  # still a working viewer
        assert [c["message"] for c in await comments(ws, 1)] == ["from http"]
    assert len((await client.get("/comments/anon")).json()["comments"]) == 1


async def test_disconnects_leave_no_subscriber_behind(server):
    async with (
        open_websocket_url(ws_url(server, "gone")),
        open_websocket_url(ws_url(server, "gone", token=token("alice"))),
    ):
        await wait_viewers(server, 2)
    await wait_viewers(server, 0)  # closed cleanly

    host, port = server.url.removeprefix("http://").split(":")
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(
            b"GET /comments/gone/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 101")
        await wait_viewers(server, 1)
        await stream.aclose()  # gone without a closing handshake
    await wait_viewers(server, 0)


async def test_idle_socket_gets_heartbeat_pings(settings):
    async with (
        run_server(settings.replace(heartbeat_seconds=0.2)) as server,
        open_websocket_url(ws_url(server, "quiet")) as ws,
    ):
        pings = 0
        with trio.fail_after(3):
            while pings < 2:
                message = json.loads(await ws.get_message())
                assert message["type"] in ("ping", "viewers"), message  # nothing else
                pings += message == {"type": "ping"}


async def test_slow_ws_viewer_catches_up_from_the_store_and_misses_nothing(settings):
    """The viewer reads nothing while 300 large comments arrive: its bounded queue
    lags, the feed catches up from Postgres, and it still gets 1..300 exactly."""
    n = 300
    async with (
        run_server(settings.replace(subscriber_queue_frames=2)) as server,
        server.client() as client,
        open_websocket_url(ws_url(server, "flood"), message_queue_size=1) as ws,
    ):
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(post_http, client, "flood", [f"{i:04d}" + "x" * 1990])
        got = await comments(ws, n, within=30)
        assert [c["seq"] for c in got] == list(range(1, n + 1))
        samples = server.service.metrics.registry
        lagged = samples.get_sample_value("livehub_viewer_catchups_total", {"reason": "lagged"})
        assert lagged and lagged >= 1  # the slow path really ran


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One client frame (FIN set, masked, payload < 126 bytes), as RFC 6455 5.2 says."""
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


async def test_a_text_frame_with_invalid_utf8_is_closed_with_1007(server):
    host, port = server.url.removeprefix("http://").split(":")
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                b"GET /comments/utf/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(4096)
            assert data.startswith(b"HTTP/1.1 101"), data
            data = data.split(b"\r\n\r\n", 1)[1]
            await stream.send_all(masked_frame(0x1, b"bad \xc3\x28 utf-8"))
            while True:  # server frames (viewers, maybe a ping) until the close frame
                chunk = await stream.receive_some(4096)
                assert chunk or data, "TCP closed without a close frame"
                data += chunk
                frames = []
                while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
                    n = data[1] & 0x7F
                    assert n < 126
                    frames.append((data[0] & 0x0F, data[2 : 2 + n]))
                    data = data[2 + n :]
                close = [payload for opcode, payload in frames if opcode == 0x8]
                if close:
                    assert int.from_bytes(close[0][:2], "big") == 1007
                    break
                if not chunk:
                    raise AssertionError("TCP closed without a close frame")
