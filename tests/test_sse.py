"""livehub/core/sse.py: the exact bytes a viewer's EventSource parses."""

from __future__ import annotations

import json

from livehub_loadtest.sse import SseParser

from livehub.core import sse
from livehub.core.model import Comment


def parse(stream: bytes) -> list[dict]:
    """The events a viewer gets from ``stream`` (the suite's one SSE parser)."""
    out = []
    for ev in SseParser().feed(stream):
        fields = {"event": ev.event.decode(), "data": ev.data.decode()}
        if ev.id is not None:
            fields["id"] = ev.id.decode()
        out.append(fields)
    return out


def comment(seq: int, message: str = "hi", user: str = "alice") -> Comment:
    return Comment("launch", seq, user, message, "2024-05-01T12:00:00.000001Z")


def test_comment_event_exact_bytes():
    c = comment(12, "héllo")
    expected = (
        b"id: 12\nevent: comment\ndata: "
        + '{"video_id":"launch","seq":12,"user_id":"alice","message":"héllo",'
        '"created_at":"2024-05-01T12:00:00.000001Z"}'.encode()
        + b"\n\n"
    )
    assert sse.encode_comment(c) == expected


def test_comment_with_newlines_and_cr_is_one_data_line():
    c = comment(3, "line1\nline2\r\nline3\rline4\u2028end")
    out = sse.encode_comment(c)
    # exactly three lines then the blank line: id, event, data
    assert out.count(b"\n") == 4 and b"\r" not in out
    assert out.endswith(b"\n\n")
    (ev,) = parse(out)
    assert ev["id"] == "3" and ev["event"] == "comment"
    assert json.loads(ev["data"]) == c.as_dict()


def test_many_comments_in_one_write_parse_back_in_order():
    cs = [comment(s, f"m{s}\nx") for s in range(5, 10)]
    out = sse.encode_comments(cs)
    assert out == b"".join(sse.encode_comment(c) for c in cs)
    events = parse(out)
    assert [int(e["id"]) for e in events] == [5, 6, 7, 8, 9]
    assert [json.loads(e["data"])["message"] for e in events] == [f"m{s}\nx" for s in range(5, 10)]


def test_no_comments_is_no_bytes():
    assert sse.encode_comments([]) == b""


def test_retry_hint_and_ping():
    assert sse.retry_hint(1500) == b"retry: 1500\n\n"
    assert sse.PING == b": ping\n\n"
    # neither is an event a client would dispatch
    assert parse(sse.PING + sse.retry_hint(10)) == []
