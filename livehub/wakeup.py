"""PURE: the wake-up payloads nodes NOTIFY each other with, and their channels.

A payload is JSON ``{"n": node, "w": [[video, first, last, comments|null], ...]}``;
comments ride inline as ``[seq, user_id, message, created_at]`` (moderation events as
``[seq, kind, target, data, created_at]``, see ``model.Event``) while the payload
stays under Postgres's 8000-byte NOTIFY limit, else only the seq range is sent and
receivers read the comments from the store.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from .model import Comment, Entry, Event

CHANNEL_PREFIX = "livehub_"


def channel_of(video_id: str, channels: int) -> str:
    """The NOTIFY channel of a video: a stable hash (crc32) mod ``channels``."""
    return f"{CHANNEL_PREFIX}{zlib.crc32(video_id.encode()) % channels}"


@dataclass(frozen=True)
class WakeUp:
    video_id: str
    first: int
    last: int
    comments: list[Entry] | None


def _inline(e: Entry) -> list:
    if type(e) is Comment:
        return [e.seq, e.user_id, e.message, e.created_at]
    return [e.seq, e.kind, e.target, e.data, e.created_at]


def _entry(video_id: str, item: list) -> Entry:
    if len(item) == 5:
        s, kind, target, data, t = item
        return Event(video_id, s, str(kind), None if target is None else int(target), data, t)
    s, u, m, t = item
    return Comment(video_id, s, u, m, t)


def _item(video_id: str, comments: list[Entry], inline: bool) -> list:
    body = [_inline(c) for c in comments] if inline else None
    return [video_id, comments[0].seq, comments[-1].seq, body]


def _dump(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def encode_wakeups(node: str, batches: list[tuple[str, list[Entry]]], max_bytes: int) -> list[str]:
    """Pack ``(video, comments)`` batches of one channel into as few payloads as fit."""
    payloads: list[str] = []
    items: list[str] = []
    size = 0
    head = f'{{"n":{_dump(node)},"w":['
    for video_id, comments in batches:
        if not comments:
            continue
        text = _dump(_item(video_id, comments, True))
        if len(head) + len(text.encode()) + 2 > max_bytes:
            text = _dump(_item(video_id, comments, False))
        n = len(text.encode())
        if items and len(head) + size + n + len(items) + 2 > max_bytes:
            payloads.append(head + ",".join(items) + "]}")
            items, size = [], 0
        items.append(text)
        size += n
    if items:
        payloads.append(head + ",".join(items) + "]}")
    return payloads


def decode_wakeups(payload: str) -> tuple[str, list[WakeUp]]:
    """Parse a payload; raises ValueError on anything malformed."""
    try:
        data = json.loads(payload)
        node = str(data["n"])
        wakeups = []
        for video_id, first, last, body in data["w"]:
            comments = None
            if body is not None:
                comments = [_entry(video_id, item) for item in body]
            wakeups.append(WakeUp(str(video_id), int(first), int(last), comments))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed wake-up payload: {exc}") from None
    return node, wakeups
