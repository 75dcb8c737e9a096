"""Frozen value types shared by every layer."""

from __future__ import annotations

import json
from dataclasses import dataclass

STREAM_PAGE = 1000  # entries per read of a stream from the store (catch-ups, gap reads)


@dataclass(frozen=True, slots=True)
class Comment:
    """One stored comment; ``seq`` is its position in the video's stream, which runs
    1, 2, 3, ... with no holes over comments and moderation events together."""

    video_id: str
    seq: int
    user_id: str
    message: str
    created_at: str  # RFC 3339, UTC, microseconds
    # The display name of the token it was posted with; None: the token had none.
    user_name: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The comment's JSON object; ``user_name`` is present only when known, so
        comments posted without one look exactly as before."""
        body: dict[str, object] = {
            "video_id": self.video_id,
            "seq": self.seq,
            "user_id": self.user_id,
            "message": self.message,
            "created_at": self.created_at,
        }
        if self.user_name is not None:
            body["user_name"] = self.user_name
        return body

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated comment not yet stored: who said what (and their display name)."""

    user_id: str
    message: str
    user_name: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A moderation event in a video's stream. It takes the video's next seq, as a
    comment does, so comments and events share one gapless order.

    ``kind`` is ``deleted`` (``target``: the deleted comment's seq), ``pinned``
    (``target``: the pinned seq, None when unpinned) or ``settings``. ``data`` is the
    event's JSON as viewers receive it. A deleted comment is replayed as a tombstone:
    a ``deleted`` event whose seq and target are its own seq.
    """

    video_id: str
    seq: int
    kind: str
    target: int | None
    data: str
    created_at: str


# One position of a video's stream.
Entry = Comment | Event


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def deleted_data(video_id: str, target: int) -> str:
    return _dumps({"video_id": video_id, "seq": target})


def pinned_data(video_id: str, comment: Comment | None) -> str:
    return _dumps({"video_id": video_id, "comment": comment.as_dict() if comment else None})


def tombstone(video_id: str, seq: int, created_at: str) -> Event:
    """What a deleted comment's seq carries in every replay after its deletion."""
    return Event(video_id, seq, "deleted", seq, deleted_data(video_id, seq), created_at)
