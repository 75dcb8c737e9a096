"""PURE: the publish proxy's wire format (docs/OPERATIONS.md, "Publish proxy").

livehub POSTs one video's posts::

    {"video_id": "v1", "posts": [{"id": "0", "user_id": "alice", "user_name": "Alice",
      "message": "hi", "client_ip": "203.0.113.7", "transport": "http"}]}

and the endpoint answers one result per post, in the same order::

    {"results": [{"action": "accept"},
                 {"action": "accept", "message": "h*"},
                 {"action": "reject", "reason": "no links"}]}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from livehub.core import validate
from livehub.core.errors import LivehubError

MAX_REASON_CHARS = 200  # a reason longer than this is cut: the poster reads it
DEFAULT_REASON = "the post was rejected"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One post as the proxy sees it."""

    user_id: str
    message: str
    user_name: str | None = None
    client_ip: str | None = None
    transport: str = "http"  # or "websocket"


@dataclass(frozen=True, slots=True)
class Accept:
    message: str | None = None  # None: as posted; else the text to store instead


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """A result livehub cannot use (unknown action, a replacement that fails
    validation): the failure policy applies to that post."""

    why: str


Verdict = Accept | Reject | Invalid


class ProxyResponseError(ValueError):
    """The whole response is unusable (not JSON, wrong shape, wrong count)."""


def encode_request(video_id: str, posts: Sequence[Candidate]) -> bytes:
    items = []
    for i, p in enumerate(posts):
        item: dict[str, object] = {"id": str(i), "user_id": p.user_id, "message": p.message}
        if p.user_name is not None:
            item["user_name"] = p.user_name
        if p.client_ip is not None:
            item["client_ip"] = p.client_ip
        item["transport"] = p.transport
        items.append(item)
    body = {"video_id": video_id, "posts": items}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_response(body: bytes, count: int, max_chars: Sequence[int]) -> list[Verdict]:
    """The verdicts of a proxy's answer to ``count`` posts; ``max_chars[i]`` is the
    length limit a replacement of post ``i`` must respect.

    Raises:
        ProxyResponseError: not a JSON object with ``results``, a list of ``count``.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProxyResponseError("the answer is not JSON") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ProxyResponseError('the answer has no "results" list')
    if len(results) != count:
        raise ProxyResponseError(f"{len(results)} results for {count} posts")
    return [_verdict(r, i, max_chars[i]) for i, r in enumerate(results)]


def _verdict(result: object, index: int, max_chars: int) -> Verdict:
    if not isinstance(result, dict):
        return Invalid("a result is not an object")
    if "id" in result and result["id"] != str(index):
        return Invalid(f"result {index} names post {result['id']!r}")
    action = result.get("action")
    if action == "reject":
        reason = result.get("reason")
        if not isinstance(reason, str) or not reason.strip() or not reason.isprintable():
            reason = DEFAULT_REASON
        return Reject(reason.strip()[:MAX_REASON_CHARS])
    if action != "accept":
        return Invalid(f"unknown action {action!r}")
    if "message" not in result or result["message"] is None:
        return Accept()
    raw = result["message"]
    if not isinstance(raw, str):
        return Invalid("a changed message is not a string")
    try:
        return Accept(validate.message_text(raw, max_chars))
    except LivehubError as exc:  # InvalidComment: empty, too long, NUL, surrogates
        return Invalid(f"the changed message is invalid: {exc.message}")
