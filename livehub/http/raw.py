"""Raw ASGI plumbing for the hot routes: headers, bounded body reads, JSON responses.

The hot routes (posting a comment, the SSE stream) are plain ASGI handlers in front of
the Quart app (``livehub/http/front.py``): Quart's request and response objects, its
contexts and its per-request tasks were a quarter of a post's CPU. Everything here is
what those handlers share; the error table stays in ``livehub/http/errors.py``.
"""

from __future__ import annotations

import json
import time

import trio

from livehub.core.errors import LivehubError, PayloadTooLarge, RequestTimeout
from livehub.http import errors as http_errors
from livehub.http.server import LEAN_EXTENSION
from livehub.node import logs

JSON = b"application/json"
NOSNIFF = (b"x-content-type-options", b"nosniff")  # on every response, as Quart's get it


class Request:
    """What a raw handler reads of an ASGI HTTP scope (header names are lower case)."""

    __slots__ = ("headers", "method", "path", "query", "receive", "scope", "started")

    def __init__(self, scope: dict, receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        self.headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            # A repeated header keeps its first value (none of ours may repeat).
            self.headers.setdefault(name.lower(), value)
        self.started = time.perf_counter()

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    async def body(self, max_bytes: int, timeout_seconds: float) -> bytes:
        """The whole body, refused with 413 past ``max_bytes`` and 408 past ``timeout_seconds``
        seconds.

        Raises:
            PayloadTooLarge, RequestTimeout.
        """
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        if LEAN_EXTENSION in self.scope.get("extensions", ()):
            # The lean server enforces the body deadline itself (receive() then says
            # http.disconnect): no cancel scope of our own per request there.
            return await self._read(max_bytes)
        with trio.move_on_after(timeout_seconds):
            return await self._read(max_bytes)
        raise RequestTimeout(f"the request body did not arrive within {timeout_seconds:g} seconds")

    async def _read(self, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise RequestTimeout("the request body did not arrive in time")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def dumps(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def respond(
    send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], content_type=JSON
) -> None:
    """One whole response (the lean server writes it with one system call)."""
    headers.append((b"content-type", content_type))
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_headers(error: LivehubError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and JSON body of a domain error, by the one table."""
    status, headers = http_errors.status_and_headers(error)
    body = http_errors.error_body(error.code, error.message)
    return status, [(k.lower().encode(), v.encode()) for k, v in headers.items()], body


def request_id(req: Request) -> str:
    rid = logs.accept_request_id(req.header(b"x-request-id"))
    logs.request_id.set(rid)
    return rid
