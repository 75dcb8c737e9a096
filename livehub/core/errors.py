"""Domain errors. ``livehub/http/errors.py`` is the one table mapping them to HTTP."""

from __future__ import annotations


class LivehubError(Exception):
    """Base of every error a client can be told about."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # a finer code than the class's, e.g. "invalid_cursor"


class BadRequest(LivehubError):
    """Malformed input: bad id, bad number, bad JSON."""

    code = "bad_request"


class InvalidComment(LivehubError):
    """Well-formed JSON whose content is not an acceptable comment."""

    code = "invalid_comment"


class Unstorable(InvalidComment):
    """Text Postgres cannot store (NUL, a lone surrogate) or that it refused (a data
    error, a check constraint): this post is refused with 422; the others go on."""

    code = "unstorable"


class Unauthorized(LivehubError):
    code = "unauthorized"


class Forbidden(LivehubError):
    """A valid token that may not do this (finer codes: banned, chat_closed)."""

    code = "forbidden"


class NotFound(LivehubError):
    code = "not_found"


class InvalidInput(LivehubError):
    """Well-formed JSON whose fields are wrong (types, ranges, unknown fields)."""

    code = "invalid_input"


class PayloadTooLarge(LivehubError):
    code = "payload_too_large"


class UnsupportedMediaType(LivehubError):
    code = "unsupported_media_type"


class RequestTimeout(LivehubError):
    """The request body did not arrive within LIVEHUB_BODY_TIMEOUT_SECONDS."""

    code = "request_timeout"


class _RetryLater(LivehubError):
    """An error the client should retry after ``retry_after_seconds`` (Retry-After)."""

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class RateLimited(_RetryLater):
    code = "rate_limited"


class KeysUnavailable(_RetryLater):
    """The identity provider's keys (JWKS) cannot be fetched: tokens cannot be checked."""

    code = "jwks_unavailable"


class TooManyStreams(RateLimited):
    """This client holds ``LIVEHUB_MAX_STREAMS_PER_CLIENT`` streams on this node (429)."""

    code = "too_many_streams"


class Unavailable(LivehubError):
    """This cannot be served right now; retry shortly (503)."""

    code = "unavailable"


class StoreUnavailable(Unavailable):
    """Postgres refused, dropped the connection, or did not answer in time."""

    code = "store_unavailable"


class VideoRestarting(Unavailable):
    """The video's actor stopped (a crash, a retirement, a shutdown) while this request
    was queued for it; a retry reaches its successor."""

    code = "video_restarting"


class NotStarted(Unavailable):
    """The node's actors are not running yet (or any more)."""

    code = "not_started"


class Overloaded(_RetryLater):
    """This node is at a configured cap (connections, inbox); try again shortly."""

    code = "overloaded"


class ShuttingDown(Overloaded):
    code = "shutting_down"


class Rejected(Forbidden):
    """The publish proxy rejected the post; its reason is the message (403)."""

    code = "rejected"


class ProxyUnavailable(_RetryLater):
    """The publish proxy failed or did not answer in time, and the failure policy is
    ``closed``: nothing was stored (503 with Retry-After)."""

    code = "proxy_unavailable"
