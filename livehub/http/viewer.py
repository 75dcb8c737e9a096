"""GET /videos/<video_id>: the viewer page; GET /assets/...: its script and style.

The page is ``livehub/static/viewer.html`` with the video id, the message limit and
asset versions filled in; all the behaviour is in ``viewer.js`` (no build step, no
CDN). A strict Content-Security-Policy backs up the script's escaping.
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from pathlib import Path

from quart import Blueprint, Response, current_app

from livehub.core import validate
from livehub.http.cors import frame_ancestors, parse_origins

STATIC = Path(__file__).resolve().parent.parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors "
)

bp = Blueprint("viewer", __name__, static_folder=str(STATIC), static_url_path="/assets")


@bp.get("/videos/<video_id>")
async def viewer_page(video_id: str) -> Response:
    video_id = validate.video_id(video_id)
    page = (
        _template()
        .replace("__VIDEO_ID__", html.escape(video_id, quote=True))
        .replace("__MAX_CHARS__", str(current_app.settings.max_message_chars))
        .replace(
            "__EMBED_ORIGINS__", html.escape(_embed_origins(current_app.settings.cors_origins))
        )
    )
    return Response(
        page,
        content_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": _csp(current_app.settings.cors_origins),
            "Referrer-Policy": "no-referrer",  # ?token= must not leak to other sites
            "Cache-Control": "no-cache",
        },
    )


@cache
def _csp(origins: str) -> str:
    """The page's CSP; only this origin and the exact allowed ones may frame it."""
    return CSP + frame_ancestors(origins)


@cache
def _embed_origins(origins: str) -> str:
    """The origins an embedded page takes a token from by postMessage (space-separated)."""
    return " ".join(sorted(parse_origins(origins)[0]))


@cache
def _template() -> str:
    """viewer.html; its assets carry a content hash so browsers never run stale ones."""
    text = (STATIC / "viewer.html").read_text("utf-8")
    for asset in ("viewer.js", "viewer.css"):
        digest = hashlib.sha256((STATIC / asset).read_bytes()).hexdigest()[:12]
        text = text.replace(f"/assets/{asset}", f"/assets/{asset}?v={digest}")
    return text
