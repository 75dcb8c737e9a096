"""The lean connection layer (livehub/http/server.py) over real sockets: what a lean
HTTP layer can get wrong. The apps here are tiny ASGI apps of the test's; h11 and the
layer under test are the real ones."""

from __future__ import annotations

import contextlib
import json

import pytest
import trio
from hypercorn.config import Config

from livehub.http.lean import serve_lean

pytestmark = pytest.mark.trio


async def echo_app(scope, receive, send):
    """Answers 201 with the body it read as JSON {"got": ..., "path": ...}."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/boom":
        raise RuntimeError("the app broke")
    if scope["path"] == "/noread":
        body = b"ignored the body"
    elif scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        while (message := await receive())["type"] != "http.disconnect":
            pass  # the (empty) request body; then wait until the client goes
        scope["state"]["gone"].append(message["type"])
        return
    else:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.dumps({"got": b"".join(chunks).decode(), "path": scope["path"]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def lean(app=echo_app, keep_alive=5.0, body_timeout=2.0, graceful=2.0):
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.keep_alive_timeout = keep_alive
    config.graceful_timeout = graceful
    stop = trio.Event()
    gone: list[str] = []

    async def app_with_state(scope, receive, send):
        if scope["type"] == "lifespan":
            scope["state"]["gone"] = gone
        return await app(scope, receive, send)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve_lean(
                app_with_state,
                config,
                body_timeout=body_timeout,
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        port = int(binds[0].rsplit(":", 1)[1])
        try:
            yield port, gone
        finally:
            stop.set()


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def read_all(stream: trio.SocketStream, within: float = 5) -> bytes:
    """Everything until the server closes the connection."""
    out = bytearray()
    with trio.fail_after(within):
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return bytes(out)
            out += data


async def read_responses(stream: trio.SocketStream, n: int, within: float = 5) -> list[bytes]:
    """``n`` whole responses (each with a Content-Length body)."""
    buf = bytearray()
    out = []
    with trio.fail_after(within):
        while len(out) < n:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = bytes(buf[:head_end]).lower()
                length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                total = head_end + 4 + length
                if len(buf) >= total:
                    out.append(bytes(buf[:total]))
                    del buf[:total]
                    continue
            data = await stream.receive_some(65536)
            if not data:
                raise EOFError(f"closed after {len(out)} responses")
            buf += data
    return out


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        len(body),
        extra,
        body,
    )


async def test_pipelined_requests_are_answered_in_order_on_one_connection():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(post("/a", b"one") + post("/b", b"two") + post("/c", b"three"))
        responses = await read_responses(s, 3)
        bodies = [json.loads(r.split(b"\r\n\r\n", 1)[1]) for r in responses]
        assert bodies == [
            {"got": "one", "path": "/a"},
            {"got": "two", "path": "/b"},
            {"got": "three", "path": "/c"},
        ]
        assert all(r.startswith(b"HTTP/1.1 201") for r in responses)


async def test_expect_100_continue_gets_its_interim_answer_before_the_body():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        buf = bytearray()
        with trio.fail_after(3):
            while b"\r\n\r\n" not in buf:
                buf += await s.receive_some(65536)
        assert buf.startswith(b"HTTP/1.1 100 ")
        await s.send_all(b"body")
        (r,) = await read_responses(s, 1)
        assert json.loads(r.split(b"\r\n\r\n", 1)[1]) == {"got": "body", "path": "/e"}


async def test_a_chunked_request_body_is_read_and_a_bad_one_ends_only_its_connection():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        (r,) = await read_responses(s, 1)
        assert json.loads(r.split(b"\r\n\r\n", 1)[1])["got"] == "abcde"
        bad = await connect(port)
        await bad.send_all(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"
        )
        assert b"201" not in await read_all(bad)  # closed, nothing answered as success
        other = await connect(port)
        await other.send_all(post("/ok", b"fine"))
        (r,) = await read_responses(other, 1)
        assert r.startswith(b"HTTP/1.1 201")


async def test_content_length_with_transfer_encoding_is_refused_with_400():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        response = await read_all(s)
        assert response.startswith(b"HTTP/1.1 400")
        assert b'"code":"bad_request"' in response


async def test_http_1_0_gets_one_answer_and_the_connection_closes():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(b"POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
        response = await read_all(s)
        assert response.startswith(b"HTTP/1.1 201")
        assert response.endswith(b'{"got": "hi", "path": "/old"}')


async def test_a_body_that_stalls_gets_408_and_the_connection_closes():
    async with lean(body_timeout=0.5) as (port, _):
        s = await connect(port)
        await s.send_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        with trio.fail_after(3):
            response = await read_all(s)
        assert response.startswith(b"HTTP/1.1 408")
        assert b'"code":"request_timeout"' in response


async def test_a_head_sent_slowly_is_cut_after_the_body_timeout_not_the_keep_alive():
    async with lean(keep_alive=30, body_timeout=0.5) as (port, _):
        s = await connect(port)
        await s.send_all(b"GET /slowloris HTTP/1.1\r\nHost: x\r\n")
        with trio.fail_after(3):
            response = await read_all(s)
        assert response.startswith(b"HTTP/1.1 408")


async def test_an_idle_keep_alive_connection_is_closed_after_the_timeout():
    async with lean(keep_alive=0.5) as (port, _):
        s = await connect(port)
        await s.send_all(post("/a", b"x"))
        await read_responses(s, 1)
        start = trio.current_time()
        assert await read_all(s, within=3) == b""  # closed without a word
        assert 0.3 < trio.current_time() - start < 2.5


async def test_a_client_that_leaves_mid_body_ends_its_own_connection_only():
    async with lean() as (port, _):
        for _ in range(50):
            s = await connect(port)
            await s.send_all(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            await s.aclose()
        ok = await connect(port)
        await ok.send_all(post("/still", b"up"))
        (r,) = await read_responses(ok, 1)
        assert r.startswith(b"HTTP/1.1 201")


async def test_the_short_body_then_close_flood_does_not_take_the_server_down():
    # The request that crashed Hypercorn's trio worker (issue 12): the app answers
    # without reading a body that never comes, and the client closes.
    async with lean() as (port, _):
        for _ in range(200):
            s = await connect(port)
            await s.send_all(b"GET /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            await s.aclose()
        ok = await connect(port)
        await ok.send_all(post("/alive", b"yes"))
        (r,) = await read_responses(ok, 1)
        assert r.startswith(b"HTTP/1.1 201")


async def test_an_unread_body_is_drained_before_the_next_request():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(post("/noread", b"x" * 5000) + post("/next", b"second"))
        first, second = await read_responses(s, 2)
        assert first.endswith(b"ignored the body")
        assert json.loads(second.split(b"\r\n\r\n", 1)[1]) == {"got": "second", "path": "/next"}


async def test_an_app_error_is_a_json_500_for_that_request_and_the_server_goes_on():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await read_all(s)
        assert response.startswith(b"HTTP/1.1 500")
        assert b'"code":"internal"' in response
        ok = await connect(port)
        await ok.send_all(post("/after", b"fine"))
        (r,) = await read_responses(ok, 1)
        assert r.startswith(b"HTTP/1.1 201")


async def test_oversized_headers_get_431_and_garbage_gets_400():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert (await read_all(s)).startswith(b"HTTP/1.1 431")
        g = await connect(port)
        await g.send_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert (await read_all(g)).startswith(b"HTTP/1.1 400")


async def test_h2c_upgrade_is_answered_over_http_1_1_and_an_h2_preface_is_refused():
    async with lean() as (port, _):
        s = await connect(port)
        await s.send_all(
            b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        (r,) = await read_responses(s, 1)
        assert r.startswith(b"HTTP/1.1 201")  # no 101: one connection, one stream
        h2 = await connect(port)
        await h2.send_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert (await read_all(h2)).startswith(b"HTTP/1.1 505")


async def test_a_client_that_leaves_mid_stream_is_noticed_by_the_app():
    async with lean() as (port, gone):
        s = await connect(port)
        await s.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = bytearray()
        with trio.fail_after(5):
            while b"first" not in buf:
                buf += await s.receive_some(65536)
        assert buf.startswith(b"HTTP/1.1 200")
        assert b"transfer-encoding: chunked" in bytes(buf).lower()
        await s.aclose()
        with trio.fail_after(5):
            while not gone:  # noqa: ASYNC110 - the app's list, filled by its own task
                await trio.sleep(0.01)
        assert gone == ["http.disconnect"]


async def test_shutdown_closes_idle_connections_and_lets_a_busy_one_finish():
    async def slow_app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await echo_app(scope, receive, send)
        await trio.sleep(0.5)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 5
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve_lean(
                slow_app,
                config,
                body_timeout=2,
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        port = int(binds[0].rsplit(":", 1)[1])
        idle = await connect(port)
        busy = await connect(port)
        await busy.send_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.sleep(0.1)
        stop.set()
        with trio.fail_after(3):
            assert await read_all(idle) == b""
            response = await read_all(busy)
        assert response.startswith(b"HTTP/1.1 201")
        assert b"connection: close" in response.lower()
        assert response.endswith(b"finished")
