"""PURE: Server-Sent Events encoding. Never imports trio, quart or asyncpg."""

from __future__ import annotations

from collections.abc import Iterable

from livehub.core.model import Comment, Entry, Event

# A comment's or event's JSON is compact and json.dumps escapes CR and LF, so its
# data is always one line: nothing in it can start a new field (e.g. a forged "id:").

PING = b": ping\n\n"


def retry_hint(milliseconds: int) -> bytes:
    """Tell EventSource how long to wait before reconnecting."""
    return b"retry: %d\n\n" % milliseconds


def viewers_event(count: int) -> bytes:
    """The video's viewer count across nodes: ``event: viewers``, ``{"count": N}``."""
    return b'event: viewers\ndata: {"count":%d}\n\n' % count


def encode_comment(comment: Comment) -> bytes:
    # Comment JSON is compact and json.dumps escapes newlines, so it is one line.
    return b"id: %d\nevent: comment\ndata: %s\n\n" % (
        comment.seq,
        comment.to_json().encode("utf-8"),
    )


def encode_moderation(event: Event) -> bytes:
    """A moderation event: ``id:`` its seq, ``event:`` its kind (deleted, pinned,
    settings), ``data:`` its JSON (compact, one line)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.seq,
        event.kind.encode("ascii"),
        event.data.encode("utf-8"),
    )


def encode_entry(entry: Entry) -> bytes:
    if type(entry) is Comment:
        return encode_comment(entry)
    return encode_moderation(entry)


def pinned_snapshot(data: str | None) -> bytes:
    """The video's current pin for a new viewer, at connect (no ``id:``: not a stream
    position). b"" when nothing is pinned."""
    return b"" if data is None else b"event: pinned\ndata: %s\n\n" % data.encode("utf-8")


def encode_comments(comments: Iterable[Entry]) -> bytes:
    """Many events in one bytes object: one socket write carries them all."""
    return b"".join(encode_entry(c) for c in comments)
