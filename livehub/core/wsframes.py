"""PURE: the WebSocket text messages of a video's stream, as ``sse.py`` is for SSE.

A comment is ``{"type": "comment", "comment": {...}}`` (its position is the comment's
``seq``); a moderation event is ``{"type": <kind>, "id": <its seq>, ...its data}``,
e.g. ``{"type": "deleted", "id": 9, "video_id": "v", "seq": 5}``. A client resumes
with ``?last_event_id=`` set to the last position it got (a comment's seq or an
event's id).
"""

from __future__ import annotations

from livehub.core.model import Comment, Entry

COMMENT_PREFIX = '{"type":"comment","comment":'


def encode_ws(entry: Entry) -> str:
    if type(entry) is Comment:
        return COMMENT_PREFIX + entry.to_json() + "}"
    # data is a compact JSON object: splice the type and position in front of its keys
    rest = entry.data[1:]
    sep = "," if rest != "}" else ""
    return f'{{"type":"{entry.kind}","id":{entry.seq}{sep}{rest}'


def pinned_snapshot_ws(data: str | None) -> list[str]:
    """The current pin for a new viewer at connect (no ``id``: not a position)."""
    return [] if data is None else ['{"type":"pinned",' + data[1:]]
