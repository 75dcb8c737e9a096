"""What the contract tests share: the document, and the routes the app serves."""

from __future__ import annotations

import re

from livehub.http import contract
from livehub.http.front import ROUTES as RAW_ROUTES

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Answered for every GET route (HEAD) and every route (OPTIONS) by the framework, and
# described once in the document's introduction rather than per path.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
_CONVERTER = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


def document() -> dict:
    return contract.document()


def openapi_path(rule: str) -> str:
    """``/videos/<video_id>/bans/<path:user_id>`` -> ``/videos/{video_id}/bans/{user_id}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def served_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every route ``app`` serves: its Quart url_map (WebSocket
    routes as the GET of their handshake) and the raw ASGI routes in front of it."""
    quart = getattr(app, "app", app)  # under CORS the app is wrapped
    routes = set()
    for rule in quart.url_map.iter_rules():
        for method in rule.methods - IMPLICIT_METHODS:
            routes.add((method, openapi_path(rule.rule)))
    routes.update(RAW_ROUTES)
    return routes


def documented_routes(doc: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
