"""The one table mapping domain errors to HTTP statuses and JSON bodies."""

from __future__ import annotations

import json
import math

from quart import Response
from werkzeug.exceptions import HTTPException

from .. import errors as e

STATUS: dict[type[e.LivehubError], int] = {
    e.BadRequest: 400,
    e.Unauthorized: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.InvalidInput: 422,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.InvalidComment: 422,
    e.RateLimited: 429,
    e.Overloaded: 503,
    e.StoreUnavailable: 503,
}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    resp = Response(body, status=status, content_type="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def status_of(error: e.LivehubError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def from_domain(error: e.LivehubError) -> Response:
    status = status_of(error)
    headers = {}
    retry = getattr(error, "retry_after_seconds", None)
    if retry is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry)))
    elif status == 503:
        headers["Retry-After"] = "1"
    if status == 413:
        # The rest of the body was never read: the connection cannot carry another
        # request, so say so instead of leaving the client waiting on it.
        headers["Connection"] = "close"
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="livehub"'
    return error_response(status, error.code, error.message, headers)


def from_http(error: HTTPException) -> Response:
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(error.code or 500, code, error.description or error.name)


def install(app) -> None:
    app.register_error_handler(e.LivehubError, from_domain)
    app.register_error_handler(HTTPException, from_http)

    async def internal(error: Exception) -> Response:
        app.logger.exception("unhandled error", exc_info=error)
        return error_response(500, "internal", "internal server error")

    app.register_error_handler(Exception, internal)
