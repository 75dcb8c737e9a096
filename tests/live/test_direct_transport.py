"""The actor's direct writes frame the body exactly as h11 would: chunks for HTTP/1.1
clients, raw bytes for HTTP/1.0 ones (nginx's default proxy_http_version)."""

from __future__ import annotations

import trio

from livehub.http.transport import http_chunk

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


async def test_without_a_direct_transport_streams_still_work_through_hypercorn(
    settings, monkeypatch
):
    """Where the direct path cannot engage (TLS, HTTP/2, another server), each batch
    is one yield through Quart and Hypercorn: same order, resume and lag handling."""
    from livehub.http.transport import DirectTransport

    from ..conftest import run_server
    from ..support import SSEReader

    monkeypatch.setattr(DirectTransport, "from_scope", classmethod(lambda cls, scope: None))
    async with run_server(settings.replace(subscriber_queue_frames=2)) as srv:
        async with srv.client() as client:
            with trio.fail_after(30):
                async with client.stream("GET", "/comments/v/stream") as response:
                    reader = SSEReader(response)
                    posted = []
                    for i in range(40):
                        r = await client.post(
                            "/comments/v", json={"message": f"m{i}"}, headers=auth()
                        )
                        posted.append(r.json())
                    assert await reader.comments(40) == posted
                async with client.stream(
                    "GET", "/comments/v/stream", headers={"Last-Event-ID": "35"}
                ) as response:
                    assert await SSEReader(response).comments(5) == posted[35:]
        assert srv.service.registry.actor("v").statistics().direct_writes == 0
