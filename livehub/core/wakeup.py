"""PURE: the wake-up payloads nodes NOTIFY each other with, and their channels.

A payload is JSON ``{"n": node, "w": [[video, first, last, comments|null], ...]}``;
comments ride inline as ``[seq, user_id, message, created_at]`` (plus ``user_name``
as a fifth item when the comment has one; moderation events as an object
``{"s": seq, "k": kind, "t": target, "d": data, "c": created_at}``, see
``model.Event``) while the payload
stays under Postgres's 8000-byte NOTIFY limit, else only the seq range is sent and
receivers read the comments from the store.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from livehub.core.model import Comment, Entry, Event

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


def _inline(e: Entry) -> list | dict:
    if type(e) is Comment:
        if e.user_name is None:
            return [e.seq, e.user_id, e.message, e.created_at]
        return [e.seq, e.user_id, e.message, e.created_at, e.user_name]
    return {"s": e.seq, "k": e.kind, "t": e.target, "d": e.data, "c": e.created_at}


def _entry(video_id: str, item: list | dict) -> Entry:
    if isinstance(item, dict):
        target = item["t"]
        return Event(
            video_id,
            int(item["s"]),
            str(item["k"]),
            None if target is None else int(target),
            str(item["d"]),
            str(item["c"]),
        )
    return _comment(video_id, item)


def _item(video_id: str, comments: list[Entry], inline: bool) -> list:
    body = [_inline(c) for c in comments] if inline else None
    return [video_id, comments[0].seq, comments[-1].seq, body]


def _dump(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def own_payload_head(node: str) -> str:
    """How every payload ``node`` sends begins: a receiver skips its own wake-ups
    without decoding them."""
    return f'{{"n":{_dump(node)},"w":['


def encode_wakeups(node: str, batches: list[tuple[str, list[Entry]]], max_bytes: int) -> list[str]:
    """Pack ``(video, comments)`` batches of one channel into as few payloads as fit."""
    payloads: list[str] = []
    items: list[str] = []
    size = 0
    head = own_payload_head(node)
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


def _comment(video_id: str, item: list) -> Comment:
    seq, user_id, message, created_at, *name = item
    if len(name) > 1:
        raise ValueError("too many fields in an inline comment")
    return Comment(video_id, seq, user_id, message, created_at, name[0] if name else None)


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
