"""PURE: the rules of moderation: chat settings, bans, who may post, request bodies.

Never imports trio, quart or asyncpg. The node's cache of each video's rules is
``modcache.py``; the SQL is ``modstore.py``; the endpoints ``http/moderation.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from livehub.core.errors import BadRequest, Forbidden, InvalidComment, InvalidInput
from livehub.core.roles import Principal

MAX_USER_ID_CHARS = 128  # as a token's ``sub``
MAX_BAN_SECONDS = 10 * 365 * 24 * 3600  # longer than this: ban permanently (null)
MAX_SLOW_MODE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ChatSettings:
    """A video's effective chat settings (its own, else the server's defaults)."""

    closed: bool
    slow_mode_seconds: float
    max_message_chars: int

    def as_dict(self) -> dict[str, object]:
        return {
            "closed": self.closed,
            "slow_mode_seconds": self.slow_mode_seconds,
            "max_message_chars": self.max_message_chars,
        }


@dataclass(frozen=True)
class StoredSettings:
    """A ``video_settings`` row: None means "the server's default"."""

    closed: bool | None = None
    slow_mode_seconds: float | None = None
    max_message_chars: int | None = None


def effective(stored: StoredSettings | None, default_slow: float, server_max: int) -> ChatSettings:
    """What applies: the video's own settings over the server's (a per-video limit
    never exceeds the server's ``max_message_chars``)."""
    s = stored or StoredSettings()
    chars = server_max if s.max_message_chars is None else min(s.max_message_chars, server_max)
    return ChatSettings(
        closed=bool(s.closed),
        slow_mode_seconds=default_slow if s.slow_mode_seconds is None else s.slow_mode_seconds,
        max_message_chars=chars,
    )


@dataclass(frozen=True)
class VideoRules:
    """What a node checks a post against: the video's settings and active bans.

    ``bans`` maps a banned user to when the ban ends (epoch seconds; None: never).
    ``slow_mode_seconds`` is the video's own setting (None: the server's applies).
    """

    settings: ChatSettings
    slow_mode_seconds: float | None = None
    bans: Mapping[str, float | None] = field(default_factory=dict)


def check_post(rules: VideoRules, user_id: str, message: str, now: float) -> None:
    """May ``user_id`` post ``message`` now?

    Raises:
        Forbidden: ``banned`` (the user is banned from the video) or ``chat_closed``.
        InvalidComment: ``message_too_long`` for the video's own limit.
    """
    if user_id in rules.bans:
        until = rules.bans[user_id]
        if until is None or until > now:
            raise Forbidden("you are banned from this video's chat", "banned")
    if rules.settings.closed:
        raise Forbidden("the chat of this video is closed", "chat_closed")
    limit = rules.settings.max_message_chars
    if len(message) > limit:
        raise InvalidComment(f"message is longer than {limit} characters", "message_too_long")


def require_moderator(principal: Principal, video_id: str) -> None:
    """Raises Forbidden unless the caller moderates ``video_id``."""
    if not principal.moderates(video_id):
        raise Forbidden(f"this needs the moderator or moderator:{video_id} role")


def may_delete(principal: Principal, video_id: str, author: str) -> bool:
    """A moderator of the video, or the comment's author."""
    return principal.moderates(video_id) or principal.user_id == author


# -- request bodies --


def parse_object(body: bytes) -> dict:
    """A JSON object body.

    Raises:
        BadRequest: not UTF-8 JSON, or not an object (400).
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("body is not valid JSON", "invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", "invalid_json")
    return data


def _only(data: dict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
            "unknown_field",
        )


def _number(name: str, value: object) -> float:
    # bool is an int in Python; true is not a number of seconds
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number", f"invalid_{name}")
    return float(value)


def user_id(raw: object) -> str:
    """A user id as in a token's ``sub``: 1-128 characters Postgres text can hold.

    Raises:
        InvalidInput: anything else.
    """
    ok = isinstance(raw, str) and raw.strip() and len(raw) <= MAX_USER_ID_CHARS
    if ok and "\x00" not in raw:
        try:
            raw.encode("utf-8")
            return raw
        except UnicodeEncodeError:
            pass
    raise InvalidInput(
        f"user_id must be a non-empty string of at most {MAX_USER_ID_CHARS} characters",
        "invalid_user_id",
    )


@dataclass(frozen=True)
class BanRequest:
    user_id: str
    seconds: float | None  # None: permanent
    delete_comments: bool


def parse_ban(body: bytes) -> BanRequest:
    """``{"user_id", "seconds": N | null, "delete_comments": bool}``.

    Raises:
        BadRequest: not a JSON object.
        InvalidInput: an empty or overlong user id, seconds not a positive number or
            null, delete_comments not a boolean, or an unknown field.
    """
    data = parse_object(body)
    _only(data, {"user_id", "seconds", "delete_comments"})
    user = user_id(data.get("user_id"))
    seconds = data.get("seconds")
    if seconds is not None:
        seconds = _number("seconds", seconds)
        if seconds <= 0 or seconds > MAX_BAN_SECONDS:
            raise InvalidInput(
                f"seconds must be > 0 and at most {MAX_BAN_SECONDS} (null: permanent)",
                "invalid_seconds",
            )
    delete = data.get("delete_comments", False)
    if not isinstance(delete, bool):
        raise InvalidInput("delete_comments must be true or false", "invalid_delete_comments")
    return BanRequest(user, seconds, delete)


def parse_settings_patch(body: bytes, server_max_chars: int) -> dict[str, object]:
    """The fields to change: ``closed`` (bool), ``slow_mode_seconds`` (0 to a day),
    ``max_message_chars`` (1 to the server's limit); each may be null (back to the
    server's default).

    Raises:
        BadRequest: not a JSON object.
        InvalidInput: a wrong type or range, an unknown field, or no field at all.
    """
    data = parse_object(body)
    _only(data, {"closed", "slow_mode_seconds", "max_message_chars"})
    if not data:
        raise InvalidInput("nothing to change", "empty_patch")
    out: dict[str, object] = {}
    if "closed" in data:
        closed = data["closed"]
        if closed is not None and not isinstance(closed, bool):
            raise InvalidInput("closed must be true, false or null", "invalid_closed")
        out["closed"] = closed
    if "slow_mode_seconds" in data:
        slow = data["slow_mode_seconds"]
        if slow is not None:
            slow = _number("slow_mode_seconds", slow)
            if not 0 <= slow <= MAX_SLOW_MODE_SECONDS:
                raise InvalidInput(
                    f"slow_mode_seconds must be between 0 and {MAX_SLOW_MODE_SECONDS}",
                    "invalid_slow_mode_seconds",
                )
        out["slow_mode_seconds"] = slow
    if "max_message_chars" in data:
        chars = data["max_message_chars"]
        if chars is not None and (
            isinstance(chars, bool)
            or not isinstance(chars, int)
            or not 1 <= chars <= server_max_chars
        ):
            raise InvalidInput(
                f"max_message_chars must be an integer from 1 to {server_max_chars}",
                "invalid_max_message_chars",
            )
        out["max_message_chars"] = chars
    return out


def parse_pin(body: bytes) -> int:
    """``{"seq": n}`` with n a positive integer.

    Raises:
        BadRequest: not a JSON object. InvalidInput: seq missing or not an integer >= 1.
    """
    data = parse_object(body)
    _only(data, {"seq"})
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= 2**62:
        raise InvalidInput("seq must be a positive integer", "invalid_seq")
    return seq
