"""The ASGI app livehub serves: raw handlers for the hot routes, Quart for the rest.

Posting a comment and the SSE stream are most of a node's requests and most of what
they cost was framework overhead, so those two routes are plain ASGI handlers
(``post.py``, ``stream.py``); every other route, the lifespan (which starts the
service) and the WebSocket go to the Quart app. Routing is by method and path shape
only; anything unusual (a bad id, an encoded slash) falls through to Quart, which
answers it as before.
"""

from __future__ import annotations

from livehub.http import post, stream

PREFIX = "/comments/"
# The routes served here, not by Quart (in OpenAPI form; docs/openapi.yaml documents
# them and tests/api checks that it does). Quart registers them too, for 405s and
# the 503 before startup.
ROUTES = (("POST", "/comments/{video_id}"), ("GET", "/comments/{video_id}/stream"))


def front(app):
    """The ASGI callable wrapping the Quart ``app``."""
    quart = app.asgi_app

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and app.service is not None:
            path = scope["path"]
            if path.startswith(PREFIX):
                rest = path[len(PREFIX) :]
                method = scope["method"]
                if method == "POST" and rest and "/" not in rest:
                    return await post.post_comment(app, scope, receive, send, rest)
                if method == "GET" and rest.endswith("/stream"):
                    video_id = rest[: -len("/stream")]
                    if video_id and "/" not in video_id:
                        return await stream.stream(app, scope, receive, send, video_id)
        return await quart(scope, receive, send)

    return asgi
