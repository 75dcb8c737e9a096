"""PURE: parse and validate what clients send. Raises domain errors, never I/O."""

from __future__ import annotations

import json
import re

from livehub.core.errors import (
    BadRequest,
    InvalidComment,
    Unauthorized,
    Unstorable,
    UnsupportedMediaType,
)
from livehub.core.model import Draft

VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_INT_PARAM = 2**62  # seqs are bigint; anything larger is nonsense, not a cursor


def video_id(raw: str) -> str:
    """A video id is 1-64 characters of ``[A-Za-z0-9_-]``.

    Raises:
        BadRequest: anything else.
    """
    if not VIDEO_ID_RE.fullmatch(raw):
        raise BadRequest(
            "video id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'", "invalid_video_id"
        )
    return raw


def non_negative_int(name: str, raw: str | None) -> int | None:
    """Parse an optional query parameter holding a non-negative integer.

    Raises:
        BadRequest: not a plain decimal integer, negative, or absurdly large.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer", f"invalid_{name}")
    value = int(text)
    if value > MAX_INT_PARAM:
        raise BadRequest(f"{name} is out of range", f"invalid_{name}")
    return value


def comment_message(body: bytes, max_chars: int) -> str:
    """The trimmed ``message`` of a JSON body ``{"message": "..."}``.

    Other keys are ignored (the user id comes from the token, never the body).

    Raises:
        BadRequest: not UTF-8, not JSON, or not a JSON object (400).
        InvalidComment: message missing, not a string, blank, too long, or holding
            characters Postgres text cannot store (422).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not valid UTF-8", "invalid_utf8") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an integer of > 4,300 digits
        raise BadRequest("body is not valid JSON", "invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest('body must be a JSON object like {"message": "..."}', "invalid_json")
    if "message" not in data:
        raise InvalidComment("message is required", "message_missing")
    message = data["message"]
    if not isinstance(message, str):
        raise InvalidComment("message must be a string", "message_not_string")
    return message_text(message, max_chars)


def message_text(message: str, max_chars: int) -> str:
    """A comment's text, trimmed: what a post's ``message`` (or a publish proxy's
    replacement of it) must be.

    Raises:
        InvalidComment: blank, too long, or holding characters Postgres text cannot
            store (422).
    """
    message = message.strip()
    if not message:
        raise InvalidComment("message must not be empty", "message_empty")
    if len(message) > max_chars:
        raise InvalidComment(f"message is longer than {max_chars} characters", "message_too_long")
    if "\x00" in message:
        raise InvalidComment("message must not contain NUL characters", "message_invalid")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidComment("message holds unpaired surrogates", "message_invalid") from None
    return message


def json_content_type(value: str | None) -> None:
    """A request body's Content-Type must be JSON (``application/json`` or ``*+json``);
    a body without one is read as JSON (lenient).

    Raises:
        UnsupportedMediaType: any other type (415).
    """
    if value is None:
        return
    mime = value.split(";", 1)[0].strip().lower()
    if mime != "application/json" and not mime.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")


def last_event_id(header: str | None, query: str | None) -> int | None:
    """The seq a resuming viewer saw last: the header wins over the query parameter.

    EventSource sends what the server put in ``id:``; we only ever send seqs, so
    anything else is a client bug and gets a 400 rather than a silent restart.
    """
    raw = header if header not in (None, "") else query
    if raw in (None, ""):
        return None
    return non_negative_int("last_event_id", raw)


MAX_USER_ID_CHARS = 128  # a user id claim longer than this is not an id
MAX_USER_NAME_CHARS = 64  # a display name, not an essay: longer ones are cut


def user_id_claim(value: object, claim: str) -> str:
    """A token's user id claim: a string of 1-128 printable characters.

    "Printable" (``str.isprintable``) rules out NUL, every control and format
    character, line breaks and lone surrogates: none can reach Postgres, a log line
    or another user's screen.

    Raises:
        Unauthorized: missing, not a string, blank, too long, or not printable.
    """
    if not isinstance(value, str) or not value.strip():
        raise Unauthorized(f"token claim {claim!r} (the user id) must be a non-empty string")
    if len(value) > MAX_USER_ID_CHARS:
        raise Unauthorized(
            f"token claim {claim!r} (the user id) is longer than {MAX_USER_ID_CHARS} characters"
        )
    if not value.isprintable():
        raise Unauthorized(
            f"token claim {claim!r} (the user id) holds control or unpaired surrogate characters"
        )
    return value


def user_name_claim(value: object, claim: str) -> str | None:
    """A token's optional display name: trimmed, cut to 64 characters; None when the
    claim is absent, not a string, or blank.

    Raises:
        Unauthorized: it holds control or unpaired surrogate characters.
    """
    if not isinstance(value, str):
        return None
    name = value.strip()[:MAX_USER_NAME_CHARS].strip()
    if not name:
        return None
    if not name.isprintable():
        raise Unauthorized(
            f"token claim {claim!r} (the display name) holds control or unpaired surrogate "
            "characters"
        )
    return name


# Postgres text cannot hold NUL, and UTF-8 cannot encode a lone surrogate.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_storable(video_id: str, draft: Draft) -> None:
    """Refuse, before any insert, a draft with text Postgres cannot take, in any column.

    Raises:
        Unstorable: the video id, user id or message holds NUL or a lone surrogate.
    """
    for name, text in (
        ("video id", video_id),
        ("user id", draft.user_id),
        ("message", draft.message),
        ("user name", draft.user_name or ""),
    ):
        if _UNSTORABLE.search(text):
            raise Unstorable(f"the {name} holds characters that cannot be stored (NUL, surrogates)")
