"""Raw trio sockets: connect, send, read a response head, keep-alive request/response.

Lean on purpose: the load tester shares two cores with the server it measures, so it
uses ``trio.socket`` directly rather than trio's stream layers or an HTTP library.
"""

from __future__ import annotations

import re
import socket as _stdlib_socket

import trio

from livehub.loadtest.http1 import (
    ChunkedDecoder,
    HttpProtocolError,
    ResponseHead,
    parse_response_head,
)

RECV_BYTES = 65536  # one read takes whatever the kernel has, up to this
_SEQ_RE = re.compile(rb'"seq"\s*:\s*(\d+)')


class PeerClosed(Exception):
    """The server closed the connection."""


async def connect(family: int, addr: tuple, within_s: float) -> trio.socket.SocketType:
    """Open a TCP connection with TCP_NODELAY; raises OSError or trio.TooSlowError."""
    sock = trio.socket.socket(family, _stdlib_socket.SOCK_STREAM)
    try:
        sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        with trio.fail_after(within_s):
            await sock.connect(addr)
    except BaseException:
        sock.close()
        raise
    return sock


async def send_all(sock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = await sock.send(view)
        view = view[sent:]


async def read_head(sock: trio.socket.SocketType) -> tuple[ResponseHead, bytes]:
    """Read until a full response head; return it and the body bytes read past it."""
    buf = b""
    while True:
        data = await sock.recv(RECV_BYTES)
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
        self._sock: trio.socket.SocketType | None = None
        self.connects = 0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
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
                data = await self._sock.recv(RECV_BYTES)
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
            data = await self._sock.recv(RECV_BYTES)
            if not data:
                raise PeerClosed("closed inside a body")
            body += data
        return body[:length]
