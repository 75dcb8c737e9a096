"""Raw sockets under trio: connect, send, read a response head, keep-alive request/response.

Lean on purpose: the load tester shares two cores with the server it measures, so it
uses non-blocking stdlib sockets with trio's ``wait_readable``/``wait_writable`` directly,
rather than trio's socket and stream layers or an HTTP library.
"""

from __future__ import annotations

import errno
import os
import re
import socket as _stdlib_socket

import trio

from livehub_loadtest.http1 import (
    ChunkedDecoder,
    HttpProtocolError,
    ResponseHead,
    parse_response_head,
)

RECV_BYTES = 65536  # one read takes whatever the kernel has, up to this
_SEQ_RE = re.compile(rb'"seq"\s*:\s*(\d+)')


class PeerClosed(Exception):
    """The server closed the connection."""


async def connect(family: int, addr: tuple, within_s: float) -> _stdlib_socket.socket:
    """Open a non-blocking TCP connection with TCP_NODELAY.

    Raises:
        OSError: refused or reset; trio.TooSlowError: not connected within ``within_s``.
    """
    sock = _stdlib_socket.socket(family, _stdlib_socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        with trio.fail_after(within_s):
            await trio.lowlevel.wait_writable(sock)
        err = sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
    except BaseException:
        sock.close()
        raise
    return sock


def close(sock: _stdlib_socket.socket) -> None:
    """Close a socket trio may have registered (trio asks for ``notify_closing`` first)."""
    trio.lowlevel.notify_closing(sock)
    sock.close()


async def send_all(sock: _stdlib_socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        view = view[sent:]
    await trio.lowlevel.checkpoint()


async def recv(sock: _stdlib_socket.socket) -> bytes:
    """Wait until readable, then read what is there (b"" at EOF).

    Waiting first and reading once costs one syscall per read instead of trio.socket's
    two (a failed recv, then the read) when, as here, most waits find nothing yet.
    """
    while True:
        await trio.lowlevel.wait_readable(sock)
        try:
            return sock.recv(RECV_BYTES)
        except BlockingIOError:
            continue


async def read_head(sock: _stdlib_socket.socket) -> tuple[ResponseHead, bytes]:
    """Read until a full response head; return it and the body bytes read past it."""
    buf = b""
    while True:
        data = await recv(sock)
        if not data:
            raise PeerClosed("closed before the response head")
        buf += data
        parsed = parse_response_head(buf)
        if parsed is not None:
            head, size = parsed
            return head, buf[size:]


def extract_seq(body: bytes) -> int | None:
    """The ``seq`` of the comment in a livehub 201 body, without decoding the JSON."""
    match = _SEQ_RE.search(body)
    return int(match.group(1)) if match else None


class KeepAliveClient:
    """One keep-alive connection, one request at a time, reopened after any error."""

    def __init__(self, family: int, addr: tuple, timeout: float) -> None:
        self._family = family
        self._addr = addr
        self._timeout = timeout
        self._sock: _stdlib_socket.socket | None = None
        self.connects = 0

    def close(self) -> None:
        if self._sock is not None:
            close(self._sock)
            self._sock = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw`` and return ``(status, body)``.

        Raises:
            OSError, PeerClosed, HttpProtocolError, trio.TooSlowError: the connection
            is closed and the next request opens a new one.
        """
        try:
            with trio.fail_after(self._timeout):
                if self._sock is None:
                    self._sock = await connect(self._family, self._addr, self._timeout)
                    self.connects += 1
                await send_all(self._sock, raw)
                head, rest = await read_head(self._sock)
                body = await self._read_body(head, rest)
        except BaseException:
            self.close()
            raise
        if head.headers.get("connection", "").lower() == "close":
            self.close()
        return head.status, body

    async def _read_body(self, head: ResponseHead, rest: bytes) -> bytes:
        assert self._sock is not None
        if head.chunked:
            decoder = ChunkedDecoder()
            parts = [decoder.feed(rest)]
            while not decoder.done:
                data = await recv(self._sock)
                if not data:
                    raise PeerClosed("closed inside a chunked body")
                parts.append(decoder.feed(data))
            return b"".join(parts)
        length = head.content_length
        if length is None:
            if head.status in (204, 304):
                return b""
            raise HttpProtocolError("response without length on a keep-alive connection")
        body = rest
        while len(body) < length:
            data = await recv(self._sock)
            if not data:
                raise PeerClosed("closed inside a body")
            body += data
        return body[:length]
