"""POST /dev/token: a token for a display name, for the viewer page in development.

Off (404) unless ``settings.dev_tokens`` (``LIVEHUB_DEV_TOKENS=1``, which
``scripts/run`` sets): anyone may ask for any name, so it must never run in production,
where the site embedding the viewer page provides the token.
"""

from __future__ import annotations

import json

from quart import Blueprint, Response, current_app

from livehub.core.errors import BadRequest
from livehub.http.body import read_body
from livehub.http.errors import error_response
from livehub.identity.auth import MAX_USER_ID_CHARS, mint

bp = Blueprint("devtoken", __name__)

DEV_TOKEN_TTL_SECONDS = 12 * 3600  # a working day of testing without signing in again
MAX_NAME_CHARS = min(64, MAX_USER_ID_CHARS)  # a display name, not an essay


@bp.post("/dev/token")
async def dev_token() -> Response:
    settings = current_app.settings
    if not settings.dev_tokens:
        return error_response(404, "not_found", "not found")
    body = await read_body(settings.max_body_bytes, settings.body_timeout_seconds)
    user = display_name(body)
    if not settings.jwt_secret:
        return error_response(404, "not_found", "dev tokens need LIVEHUB_JWT_SECRET")
    token = mint(user, settings.jwt_secret, DEV_TOKEN_TTL_SECONDS, name=user)
    return Response(
        json.dumps({"token": token, "user": user, "expires_in": DEV_TOKEN_TTL_SECONDS}),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def display_name(body: bytes) -> str:
    """The trimmed ``user`` of ``{"user": "..."}``.

    Raises:
        BadRequest: not a JSON object, or ``user`` not 1-64 printable characters.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest('body must be JSON like {"user": "alice"}', "invalid_json") from None
    user = data.get("user") if isinstance(data, dict) else None
    user = user.strip() if isinstance(user, str) else ""
    if not user or len(user) > MAX_NAME_CHARS or not user.isprintable():
        raise BadRequest(f"user must be 1-{MAX_NAME_CHARS} printable characters", "invalid_user")
    return user
