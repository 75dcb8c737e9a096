"""DirectTransport: write a streaming response's body straight to Hypercorn's socket.

Why: in this stack each SSE write costs ~75-130 µs of CPU through Quart, Hypercorn's
HTTPStream, h11, its send lock, a shielded cancel scope and Trio's socket layer, plus
a task switch to the viewer's task (STACK-NOTES.md). The bytes themselves are cheap.
Once the response headers are out, an HTTP/1.1 body is just chunks on a socket, so a
live frame can be written by the video's actor in one non-blocking ``os.write`` per
viewer, with no await and no task switch (what nginx/nchan do in C).

Safety rules, all kept here:
- only for Hypercorn's trio worker speaking HTTP/1.x (the ASGI ``send`` chain is
  checked by type; anything else gets None and the ordinary generator path);
- the body framing matches h11's: chunked for HTTP/1.1 peers, raw for HTTP/1.0;
- never while Hypercorn itself is sending (its ``send_lock`` is held) and never
  after the socket is closed (the fd is looked up on every write, so a reused fd
  number can never receive our bytes);
- a write that does not complete is finished by the viewer's own task, holding the
  send lock, before anything else is written.
"""

from __future__ import annotations

import os

import trio
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.trio.tcp_server import TCPServer

from ..sse import http_chunk

SCOPE_KEY = "livehub.raw_send"


def install_raw_send_capture(app) -> None:
    """Wrap ``app.asgi_app`` so HTTP handlers can find the server's raw ASGI send."""
    inner = app.asgi_app

    async def asgi_app(scope, receive, send):
        if scope["type"] == "http":
            scope[SCOPE_KEY] = send
        return await inner(scope, receive, send)

    app.asgi_app = asgi_app


class DirectTransport:
    def __init__(self, tcp: TCPServer, chunked: bool) -> None:
        self._tcp = tcp
        self.chunked = chunked
        self._pending = b""  # the unwritten tail of a direct write
        self.closed = False

    @classmethod
    def from_scope(cls, scope: dict) -> DirectTransport | None:
        send = scope.get(SCOPE_KEY)
        stream = getattr(send, "__self__", None)
        if not isinstance(stream, HTTPStream):
            return None
        protocol = getattr(stream.send, "__self__", None)
        if not isinstance(protocol, H11Protocol):
            return None
        tcp = getattr(protocol.send, "__self__", None)
        if not isinstance(tcp, TCPServer) or not hasattr(tcp.stream, "socket"):
            return None  # TLS (SSLStream) or a different server: not ours to bypass
        if not isinstance(getattr(tcp, "send_lock", None), trio.Lock):
            return None  # a Hypercorn whose internals moved: use the ordinary path
        version = getattr(protocol.connection, "their_http_version", None)
        return cls(tcp, chunked=version == b"1.1")

    def frame(self, data: bytes) -> bytes:
        return http_chunk(data) if self.chunked else data

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def try_write(self, framed: bytes) -> bool:
        """Write ``framed`` without blocking; True if the transport took it (all of it
        now, or the rest kept as pending for the viewer's task to finish).

        False when it cannot write at all now (Hypercorn is sending, a previous write
        is unfinished, the socket buffer is full, or the connection is gone): the
        caller queues the frame instead.
        """
        if self._pending or self.closed or self._tcp.send_lock.locked():
            return False
        fd = self._tcp.stream.socket.fileno()
        if fd < 0:
            self.closed = True
            return False
        try:
            n = os.write(fd, framed)
        except BlockingIOError:
            return False
        except OSError:
            self.closed = True  # reset/broken: Hypercorn notices and ends the request
            return False
        if n < len(framed):
            self._pending = framed[n:]
        return True

    async def write(self, framed: bytes) -> None:
        """Write pending bytes then ``framed`` (may be empty), waiting as needed.

        Raises:
            trio.BrokenResourceError, trio.ClosedResourceError: the connection is gone.
        """
        async with self._tcp.send_lock:
            data, self._pending = self._pending + framed, b""
            if data:
                await self._tcp.stream.send_all(data)
