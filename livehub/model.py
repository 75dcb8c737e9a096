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

    def as_dict(self) -> dict[str, object]:
        return {
            "video_id": self.video_id,
            "seq": self.seq,
            "user_id": self.user_id,
            "message": self.message,
            "created_at": self.created_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated comment not yet stored: who said what."""

    user_id: str
    message: str
