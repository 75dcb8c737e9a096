"""PURE: incremental Server-Sent Events parsing and the load tester's message token.

The parser keeps only what the audit needs from each event: its ``id:``, its ``event:``
type and its ``data:``. Comment lines (``: ping``) are skipped; the last ``retry:`` seen
is kept in ``SseParser.retry``. Events may be split anywhere across reads, and many may
arrive in one read. It is also the one SSE parser of livehub's own test suite.

A load-test message carries a token ``lt <run> <poster> <n> <send_ns>`` somewhere in
the event data: inside livehub's comment JSON, or the raw POST body that nchan relays.
It is found with ``bytes.find`` rather than by decoding JSON for every event.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_EVENT_BYTES = 1 << 20  # an unterminated event larger than this means a broken stream


class SseProtocolError(Exception):
    """The stream is not SSE as we understand it."""


class SseEvent(NamedTuple):
    id: bytes | None  # None when the event had no id: field
    event: bytes  # b"message" unless an event: field said otherwise
    data: bytes


class SseParser:
    """Feed raw body bytes, get back the complete events."""

    __slots__ = ("_buf", "retry")

    def __init__(self) -> None:
        self._buf = b""
        self.retry: int | None = None  # the last reconnection time (ms) the server set

    def feed(self, data: bytes) -> list[SseEvent]:
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            if len(buf) > MAX_EVENT_BYTES:
                raise SseProtocolError("event too large")
            self._buf = buf
            return []
        self._buf = buf[end + 2 :]
        events: list[SseEvent] = []
        for block in buf[:end].split(b"\n\n"):
            if not block or (block[0] == 0x3A and b"\n" not in block):  # b":" ping alone
                continue
            if block.startswith(b"retry:"):
                self._retry(block)
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def _retry(self, block: bytes) -> None:
        value = block.split(b"\n", 1)[0][6:].strip()
        if value.isdigit():
            self.retry = int(value)


def _parse_block(block: bytes) -> SseEvent | None:
    ev_id: bytes | None = None
    ev_type = b"message"
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # comment
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"id":
            ev_id = value
        elif name == b"event":
            ev_type = value
    if not data:
        return None  # per the SSE spec an event without data is not dispatched
    return SseEvent(ev_id, ev_type, b"\n".join(data) if len(data) > 1 else data[0])


def make_message(run: str, poster: int, n: int, send_ns: int, pad_to: int = 0) -> str:
    """The message text of one load-test comment (ASCII, JSON-safe, no escapes)."""
    text = f"lt {run} {poster} {n} {send_ns}"
    if len(text) + 1 < pad_to:
        text += " " + "x" * (pad_to - len(text) - 1)
    return text


class Token(NamedTuple):
    poster: int
    n: int
    send_ns: int


def find_token(data: bytes, marker: bytes) -> Token | None:
    """Find ``lt <run> <poster> <n> <send_ns>`` in ``data``; ``marker`` is ``b"lt <run> "``.

    Returns None when the event is not one of this run's messages.
    """
    start = data.find(marker)
    if start < 0:
        return None
    fields = data[start + len(marker) : start + len(marker) + 64].split(b" ", 3)
    if len(fields) < 3:
        return None
    last = fields[2]
    cut = last.find(b'"')
    if cut >= 0:
        last = last[:cut]
    try:
        return Token(int(fields[0]), int(fields[1]), int(last))
    except ValueError:
        return None


def pack_key(poster: int, n: int) -> int:
    """One int per message: unique within a run, cheap to store in an ``array('q')``."""
    return (poster << 32) | n


def unpack_key(key: int) -> tuple[int, int]:
    return key >> 32, key & 0xFFFFFFFF


def order_key(ev_id: bytes | None) -> int | None:
    """An orderable int for an event id: livehub's ``seq``, or nchan's ``<time>:<tag>``.

    Returns None for ids of any other shape (those are then not checked for order).
    """
    if not ev_id:
        return None
    if ev_id.isdigit():
        return int(ev_id)
    head, sep, tail = ev_id.partition(b":")
    if sep and head.isdigit() and tail.isdigit():
        return (int(head) << 24) | int(tail)
    return None
