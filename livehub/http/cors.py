"""CORS for sites embedding livehub: an ASGI middleware around the whole app.

``LIVEHUB_CORS_ORIGINS`` lists the origins allowed: exact ones (``https://site.example``)
get every comment route (POST, history, the SSE stream, the WebSocket); ``*`` lets any
origin read (GET/HEAD: history, stream, assets), never post. Same-origin requests
(the Origin's host is the request's Host) are always fine.

- Preflight ``OPTIONS`` (with ``Access-Control-Request-Method``) is answered here: 204
  with the methods and headers granted, or 403 ``origin_not_allowed``.
- Other HTTP requests from an allowed origin get ``Access-Control-Allow-Origin`` (and
  ``Vary: Origin``) added to their response; others pass unchanged, and the browser
  keeps the answer from the page.
- A WebSocket handshake from an origin that is not allowed is refused with 403: the
  browser applies no CORS to WebSockets, so the server must.

With no origins configured, :func:`wrap` returns the app itself: no per-request cost.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

ALLOW_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"  # moderation too
READ_METHODS = b"GET, HEAD, OPTIONS"
ALLOW_HEADERS = b"authorization, content-type, last-event-id, x-request-id"
EXPOSE_HEADERS = b"retry-after, x-request-id, x-livehub-node"
PREFLIGHT_MAX_AGE = b"600"  # browsers cache a preflight this many seconds
READ_ONLY = (b"GET", b"HEAD")


def parse_origins(raw: str) -> tuple[frozenset[str], bool]:
    """The exact origins of a comma-separated setting, and whether ``*`` is in it.

    Raises:
        ValueError: an entry is not ``scheme://host[:port]`` (no path, no trailing /).
    """
    exact = set()
    wildcard = False
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        if entry == "*":
            wildcard = True
            continue
        parts = urlsplit(entry)
        if parts.scheme not in ("http", "https") or not parts.netloc or entry.endswith("/"):
            raise ValueError(f"{entry!r} is not an origin like https://site.example")
        if parts.path or parts.query or parts.fragment:
            raise ValueError(f"{entry!r} is not an origin like https://site.example")
        exact.add(entry.lower())
    return frozenset(exact), wildcard


def frame_ancestors(raw: str) -> str:
    """The CSP ``frame-ancestors`` of the pages: this origin and the exact origins
    (``*`` grants reading, not framing)."""
    exact, _ = parse_origins(raw)
    return " ".join(["'self'", *sorted(exact)])


def wrap(app, origins: str):
    """``app`` behind :class:`CorsMiddleware` for ``origins``, or ``app`` itself when
    there are none."""
    exact, wildcard = parse_origins(origins)
    if not exact and not wildcard:
        return app
    return CorsMiddleware(app, exact, wildcard)


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _same_origin(origin: bytes, scope: dict) -> bool:
    host = _header(scope, b"host")
    if host is None:
        return False
    _, sep, rest = origin.partition(b"://")
    return bool(sep) and rest.lower() == host.lower()


class CorsMiddleware:
    """See the module docstring. Attributes of the wrapped app (``service``,
    ``settings``, ``test_app``...) are reached through this object."""

    def __init__(self, app, exact: frozenset[str], wildcard: bool) -> None:
        self.app = app
        self._exact = frozenset(o.encode() for o in exact)
        self._wildcard = wildcard

    def __getattr__(self, name: str):
        return getattr(self.app, name)

    def _grant(self, origin: bytes, scope: dict, method: bytes) -> bytes | None:
        """What Access-Control-Allow-Origin to send, or None for no grant."""
        if origin.lower() in self._exact or _same_origin(origin, scope):
            return origin
        if self._wildcard and method in READ_ONLY:
            return b"*"
        return None

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, send)  # not a cross-origin browser request
            return
        if kind == "websocket":
            if origin.lower() in self._exact or _same_origin(origin, scope):
                await self.app(scope, receive, send)
            else:
                await _refuse_websocket(scope, receive, send)
            return
        method = scope["method"].encode()
        wanted = _header(scope, b"access-control-request-method")
        if method == b"OPTIONS" and wanted is not None:
            await self._preflight(origin, wanted.strip().upper(), scope, send)
            return
        grant = self._grant(origin, scope, method)
        if grant is None:
            await self.app(scope, receive, send)
            return

        async def send_granted(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers += [
                    (b"access-control-allow-origin", grant),
                    (b"access-control-expose-headers", EXPOSE_HEADERS),
                    (b"vary", b"Origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_granted)

    async def _preflight(self, origin: bytes, wanted: bytes, scope: dict, send) -> None:
        grant = self._grant(origin, scope, wanted)
        if grant is None:
            body = json.dumps(
                {
                    "error": {
                        "code": "origin_not_allowed",
                        "message": f"this server does not allow {wanted.decode()} requests "
                        f"from {origin.decode(errors='replace')}",
                    }
                }
            ).encode()
            await _respond(send, 403, [(b"content-type", b"application/json")], body)
            return
        methods = READ_METHODS if grant == b"*" else ALLOW_METHODS
        await _respond(
            send,
            204,
            [
                (b"access-control-allow-origin", grant),
                (b"access-control-allow-methods", methods),
                (b"access-control-allow-headers", ALLOW_HEADERS),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
                (b"vary", b"Origin"),
            ],
            b"",
        )


async def _respond(send, status: int, headers: list, body: bytes) -> None:
    headers = [
        *headers,
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(scope: dict, receive, send) -> None:
    """403 to the handshake: a JSON body where the server can send one (ASGI's
    websocket.http.response extension, which Hypercorn has), else a bare close."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps(
            {
                "error": {
                    "code": "origin_not_allowed",
                    "message": "WebSocket connections from this origin are not allowed",
                }
            }
        ).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
