"""DirectTransport: a streaming response's body written straight to the client's socket.

Why: once an SSE response's head is out, an HTTP/1.x body is just bytes on a socket,
so a live frame can be written by the video's actor in one non-blocking ``os.write``
per viewer, with no await and no task switch (what nginx/nchan do in C). Through the
server's ordinary write path the same write cost ~75-130 µs of CPU (docs/ARCHITECTURE.md).

This module owns the HTTP framing of those writes (chunked for HTTP/1.1 peers, raw for
HTTP/1.0, as h11 frames a body) and the rules that keep them safe:
- only where the server is known: livehub's lean server (``livehub/http/server.py``),
  or Hypercorn's trio worker over HTTP/1.x, found by
  :mod:`livehub.http.hypercorn_internals` (TLS, HTTP/2 and anything else: None, and the
  ordinary path);
- never while the server itself is sending, and never after the socket is closed (the
  fd is looked up on every write, so a reused fd number never receives our bytes);
- a write that does not complete is finished by the viewer's own task, through the
  server's write path, before anything else is written.
"""

from __future__ import annotations

import os
from typing import Protocol

import trio

from livehub.http import hypercorn_internals
from livehub.http.server import LEAN_EXTENSION, Connection

CHUNK_KEY = "http_chunk"
MAX_DISCARD_BYTES = 65536  # what a streaming client may send before it is cut off


def http_chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, as h11 frames a body part (never empty: an empty
    chunk ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class SocketOwner(Protocol):
    """The server side of one connection, as a direct transport needs it."""

    def busy(self) -> bool: ...
    def fileno(self) -> int: ...
    async def write_all(self, data: bytes) -> None: ...


class _LeanOwner:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def busy(self) -> bool:
        return self._conn.sending

    def fileno(self) -> int:
        return -1 if self._conn.closed else self._conn.socket.fileno()

    async def write_all(self, data: bytes) -> None:
        await self._conn.write(data)


class DirectTransport:
    def __init__(self, owner: SocketOwner, chunked: bool, lean: Connection | None = None) -> None:
        self._owner = owner
        self.chunked = chunked
        self._lean = lean
        self._pending = b""  # the unwritten tail of a direct write
        self._discarded = 0
        self.closed = False

    @classmethod
    def from_scope(cls, scope: dict) -> DirectTransport | None:
        conn = scope.get("extensions", {}).get(LEAN_EXTENSION)
        if isinstance(conn, Connection):
            conn.take_socket()
            return cls(_LeanOwner(conn), scope.get("http_version") == "1.1", conn)
        found = hypercorn_internals.socket_owner(scope)
        if found is None:
            return None
        owner, chunked = found
        return cls(owner, chunked)

    @property
    def can_wait_idle(self) -> bool:
        """True when :meth:`wait_idle` notices a client that goes away (lean server)."""
        return self._lean is not None

    def frame(self, data: bytes) -> bytes:
        return http_chunk(data) if self.chunked else data

    def framed(self, frame) -> bytes:
        """A delivery frame's SSE bytes framed for this connection, made once per frame
        and shared by every viewer."""
        if not self.chunked:
            return frame.sse()
        cache = frame.cache
        chunk = cache.get(CHUNK_KEY)
        if chunk is None:
            chunk = cache[CHUNK_KEY] = http_chunk(frame.sse())
        return chunk

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def try_write_frame(self, frame) -> bool:
        return self.try_write(self.framed(frame))

    def try_write_control(self, data: bytes) -> bool:
        return self.try_write(self.frame(data))

    def try_write(self, framed: bytes) -> bool:
        """Write ``framed`` without blocking; True if the transport took it (all of it
        now, or the rest kept as pending for the viewer's task to finish).

        False when it cannot write at all now (the server is sending, a previous write
        is unfinished, the socket buffer is full, or the connection is gone): the
        caller queues the frame instead.
        """
        if self._pending or self.closed or self._owner.busy():
            return False
        fd = self._owner.fileno()
        if fd < 0:
            self.closed = True
            return False
        try:
            n = os.write(fd, framed)
        except BlockingIOError:
            return False
        except OSError:
            self.closed = True  # reset/broken: the viewer's task ends the stream
            return False
        if n < len(framed):
            self._pending = framed[n:]
        return True

    async def write(self, framed: bytes) -> None:
        """Write pending bytes then ``framed`` (may be empty), waiting as needed.

        Raises:
            trio.BrokenResourceError, trio.ClosedResourceError: the connection is gone.
        """
        if self.closed:
            raise trio.BrokenResourceError("the client is gone")
        data, self._pending = self._pending + framed, b""
        if data:
            await self._owner.write_all(data)

    async def wait_idle(self) -> None:
        """Sleep until the client closes its side (raises BrokenResourceError) or the
        caller's cancel scope is cancelled (there is something to write). A client
        that keeps sending after a streaming request is cut off past 64 KiB."""
        conn = self._lean
        assert conn is not None
        sock = conn.socket
        while True:
            if self.closed:
                raise trio.BrokenResourceError("the client is gone")
            await trio.lowlevel.wait_readable(sock)
            try:
                data = os.read(sock.fileno(), 4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed = True
                raise trio.BrokenResourceError("the client closed the connection")
            self._discarded += len(data)
            if self._discarded > MAX_DISCARD_BYTES:
                self.closed = True
                raise trio.BrokenResourceError("the client sent too much during a stream")
