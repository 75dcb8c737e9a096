"""PURE: webhook events, their delivery ids, the request body, and the retry backoff
(docs/OPERATIONS.md, "Webhooks").

A delivery request carries one or more events::

    {"events": [{"id": "c:v1:17", "type": "comment.stored", "video_id": "v1",
                 "created_at": "2026-12-02T01:02:03.000004Z", "data": {...}}]}

``id`` is the delivery id: it is derived from what the event reports (a comment's
video and seq, an outbox row's id), so every attempt at delivering an event, by any
node, before or after a restart, carries the same id. Receivers de-duplicate on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    video_id: str
    created_at: str
    data: dict

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "type": self.type,
            "video_id": self.video_id,
            "created_at": self.created_at,
            "data": self.data,
        }


def comment_id(video_id: str, seq: int) -> str:
    return f"c:{video_id}:{seq}"


def outbox_id(row_id: int) -> str:
    return f"m:{row_id}"


def comment_stored(
    video_id: str,
    seq: int,
    user_id: str,
    message: str | None,
    created_at: str,
    user_name: str | None,
) -> WebhookEvent:
    """``comment.stored``; ``message`` None: the comment was deleted before this
    delivery (its text is never sent again, as no API returns it)."""
    data: dict[str, object] = {
        "video_id": video_id,
        "seq": seq,
        "user_id": user_id,
        "message": message,
        "created_at": created_at,
    }
    if user_name is not None:
        data["user_name"] = user_name
    if message is None:
        data["deleted"] = True
    return WebhookEvent(comment_id(video_id, seq), "comment.stored", video_id, created_at, data)


# moderation_log action -> webhook event type
MODERATION_TYPES = {
    "delete": "comment.deleted",
    "ban": "user.banned",
    "unban": "user.unbanned",
    "settings": "chat.settings_changed",
    "pin": "comment.pinned",
    "unpin": "comment.unpinned",
}


def moderation_payload(
    action: str, video_id: str, actor: str, target: str | None, detail: dict
) -> tuple[str, dict]:
    """(event type, data) of a moderation action, written to the outbox in the
    action's own transaction."""
    data: dict[str, object] = {"video_id": video_id, "actor": actor}
    if action == "delete":
        data["seq"] = int(target) if target is not None else None
    elif action in ("ban", "unban"):
        data["user_id"] = target
        if action == "ban":
            data["seconds"] = detail.get("seconds")
            data["deleted_seqs"] = detail.get("deleted", [])
    elif action == "settings":
        data["changes"] = detail
    elif action == "pin":
        data["seq"] = int(target) if target is not None else None
    return MODERATION_TYPES.get(action, f"moderation.{action}"), data


def encode_batch(events: Sequence[WebhookEvent]) -> bytes:
    body = {"events": [e.as_dict() for e in events]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """The wait before attempt ``attempts + 1`` after ``attempts`` failures (1, 2, 4,
    ... times ``base``, at most ``cap``)."""
    if attempts <= 0:
        return 0.0
    return min(cap, base * 2 ** min(attempts - 1, 30))
