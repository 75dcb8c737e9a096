"""PURE: the HTTP/1.x rules livehub's connection layer adds around h11.

h11 parses; these decide what a parsed request gets (refusals, a WebSocket hand-off)
and build the few bytes of our own (error bodies, the Date value, the head replayed to
the server a connection is handed to). No I/O, no Trio.
"""

from __future__ import annotations

import time
from email.utils import formatdate

import h11

ERROR_BODIES = {
    400: b'{"error":{"code":"bad_request","message":"malformed HTTP request"}}',
    408: b'{"error":{"code":"request_timeout","message":"the request was not received in time"}}',
    413: b'{"error":{"code":"payload_too_large","message":"request is too large"}}',
    431: b'{"error":{"code":"headers_too_large","message":"request headers are too large"}}',
    505: b'{"error":{"code":"http_version_not_supported","message":"only HTTP/1.x is served"}}',
    500: b'{"error":{"code":"internal","message":"internal server error"}}',
}


class DateHeader:
    """The Date header, formatted once per second rather than per response."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


def refusal(request: h11.Request, max_head_bytes: int) -> int:
    """A status for a request h11 accepts but livehub will not serve, else 0: HTTP/2's
    preface ("PRI * HTTP/2.0"), a head over the limit (h11 bounds only what arrives
    in pieces), and both Content-Length and Transfer-Encoding (RFC 9112 lets a server
    refuse it; behind a proxy it is how requests are smuggled)."""
    if request.http_version not in (b"1.0", b"1.1"):
        return 505
    size = len(request.target)
    has_length = has_encoding = False
    for name, value in request.headers:
        size += len(name) + len(value) + 4
        if name == b"content-length":
            has_length = True
        elif name == b"transfer-encoding":
            has_encoding = True
    if size > max_head_bytes:
        return 431
    if has_length and has_encoding:
        return 400
    return 0


def is_websocket_upgrade(request: h11.Request) -> bool:
    if request.method != b"GET":
        return False
    upgrade = connection = b""
    for name, value in request.headers:
        if name == b"upgrade":
            upgrade = value.strip().lower()
        elif name == b"connection":
            connection = value.lower()
    return upgrade == b"websocket" and any(t.strip() == b"upgrade" for t in connection.split(b","))


def replay_bytes(request: h11.Request, trailing: bytes) -> bytes:
    """The request head as the client sent it (h11 already checked it), then
    ``trailing`` (what followed it), for the server the connection is handed to."""
    lines = [b"%s %s HTTP/%s" % (request.method, request.target, request.http_version)]
    lines.extend(name + b": " + value for name, value in request.headers.raw_items())
    return b"\r\n".join(lines) + b"\r\n\r\n" + trailing
