"""The one table mapping domain errors to HTTP statuses and JSON bodies."""

from __future__ import annotations

import json
import math

from quart import Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from livehub.core import errors as e

STATUS: dict[type[e.LivehubError], int] = {
    e.BadRequest: 400,
    e.Unauthorized: 401,
    e.RequestTimeout: 408,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.InvalidInput: 422,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.InvalidComment: 422,
    e.RateLimited: 429,
    e.Overloaded: 503,
    e.Unavailable: 503,
    e.KeysUnavailable: 503,
    e.ProxyUnavailable: 503,
}


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    resp = Response(error_body(code, message), status=status, content_type="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def status_of(error: e.LivehubError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def status_and_headers(error: e.LivehubError) -> tuple[int, dict[str, str]]:
    """The status of a domain error and the headers that go with it."""
    status = status_of(error)
    headers = {}
    retry = getattr(error, "retry_after_seconds", None)
    if retry is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry)))
    elif status == 503:
        headers["Retry-After"] = "1"
    if status in (408, 413):
        # The rest of the body was never read: the connection cannot carry another
        # request, so say so instead of leaving the client waiting on it.
        headers["Connection"] = "close"
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="livehub"'
    return status, headers


def from_domain(error: e.LivehubError) -> Response:
    status, headers = status_and_headers(error)
    return error_response(status, error.code, error.message, headers)


def from_http(error: HTTPException) -> Response:
    code = (error.name or "error").lower().replace(" ", "_")
    headers = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))  # RFC 9110: a 405 says
    return error_response(error.code or 500, code, error.description or error.name, headers)


def install(app) -> None:
    app.register_error_handler(e.LivehubError, from_domain)
    app.register_error_handler(HTTPException, from_http)

    async def internal(error: Exception) -> Response:
        app.logger.exception("unhandled error", exc_info=error)
        return error_response(500, "internal", "internal server error")

    app.register_error_handler(Exception, internal)
