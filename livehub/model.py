"""Frozen value types shared by every layer."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Comment:
    """One stored comment; ``seq`` is its position in the video, 1, 2, 3, ... no holes."""

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
