"""The actor's direct writes frame the body exactly as h11 would: chunks for HTTP/1.1
clients, raw bytes for HTTP/1.0 ones (nginx's default proxy_http_version)."""

from __future__ import annotations

import trio

from livehub.sse import http_chunk

from ..support import auth
from .rawsse import read_until


async def _raw_get(url: str, video: str, version: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(
        f"GET /comments/{video}/stream HTTP/{version}\r\nHost: {host}\r\n\r\n".encode()
    )
    return stream


async def test_http_1_1_viewer_gets_chunked_frames_and_http_1_0_viewer_raw_frames(server, client):
    with trio.fail_after(20):
        v11 = await _raw_get(server.url, "v", "1.1")
        v10 = await _raw_get(server.url, "v", "1.0")
        buf11, buf10 = bytearray(), bytearray()
        await read_until(v11, buf11, b"retry:")
        await read_until(v10, buf10, b"retry:")
        assert b"transfer-encoding: chunked" in buf11.lower()
        assert b"transfer-encoding" not in buf10.lower()
        r = await client.post("/comments/v", json={"message": "hi"}, headers=auth())
        assert r.status_code == 201
        event = b"id: 1\nevent: comment\ndata: " + r.content + b"\n\n"  # compact JSON
        await read_until(v11, buf11, http_chunk(event))
        await read_until(v10, buf10, event)
    assert http_chunk(event) not in buf10
    assert server.service.registry.actor("v").statistics().direct_writes >= 2
    await v11.aclose()
    await v10.aclose()
