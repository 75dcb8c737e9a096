"""SSE parsing for both peers and the message token, split across reads."""

import json

import pytest
from livehub_loadtest.sse import (
    SseEvent,
    SseParser,
    find_token,
    make_message,
    order_key,
    pack_key,
    unpack_key,
)

RUN = "ab12"
MARKER = f"lt {RUN} ".encode()


def livehub_event(seq: int, message: str) -> bytes:
    comment = {
        "video_id": "v",
        "seq": seq,
        "user_id": "u",
        "message": message,
        "created_at": "2025-01-01T00:00:00 Z",
    }
    return b"id: %d\nevent: comment\ndata: %s\n\n" % (seq, json.dumps(comment).encode())


LIVEHUB_STREAM = (
    b"retry: 1000\n\n: ping\n\n"
    + livehub_event(1, make_message(RUN, 0, 0, 111))
    + livehub_event(2, make_message(RUN, 1, 0, 222, pad_to=80))
    + b"event: viewers\ndata: 12\n\n"
    + b": ping\n\n"
    + livehub_event(3, make_message(RUN, 0, 1, 333))
)
NCHAN_STREAM = (
    b": hi\n\nid: 1795547405:0\ndata: "
    + json.dumps({"message": make_message(RUN, 2, 7, 444)}).encode()
    + b"\n\n"
)


def parse_in_pieces(stream: bytes, cuts: list[int]) -> list[SseEvent]:
    parser, events, last = SseParser(), [], 0
    for cut in [*cuts, len(stream)]:
        events += parser.feed(stream[last:cut])
        last = cut
    return events


def test_livehub_stream_in_one_read():
    events = SseParser().feed(LIVEHUB_STREAM)
    assert [e.id for e in events] == [b"1", b"2", None, b"3"]
    assert [e.event for e in events] == [b"comment", b"comment", b"viewers", b"comment"]
    tokens = [find_token(e.data, MARKER) for e in events]
    assert [(t.poster, t.n, t.send_ns) for t in tokens if t] == [
        (0, 0, 111),
        (1, 0, 222),
        (0, 1, 333),
    ]


@pytest.mark.parametrize("cut", range(1, len(LIVEHUB_STREAM)))
def test_livehub_stream_split_anywhere(cut):
    assert parse_in_pieces(LIVEHUB_STREAM, [cut]) == SseParser().feed(LIVEHUB_STREAM)


def test_crlf_line_endings_split_between_cr_and_lf():
    stream = LIVEHUB_STREAM.replace(b"\n", b"\r\n")
    for cut in range(1, len(stream)):
        assert parse_in_pieces(stream, [cut]) == SseParser().feed(LIVEHUB_STREAM)


def test_nchan_stream_id_and_raw_body():
    (event,) = SseParser().feed(NCHAN_STREAM)
    assert event.id == b"1795547405:0" and event.event == b"message"
    assert find_token(event.data, MARKER) == (2, 7, 444)


def test_multiline_data_is_joined():
    (event,) = SseParser().feed(b"data: a\ndata: b\n\n")
    assert event.data == b"a\nb"


def test_token_of_another_run_is_ignored():
    assert find_token(b'{"message": "lt zz99 0 0 1"}', MARKER) is None
    assert find_token(b'{"message": "hello"}', MARKER) is None


def test_order_keys_follow_both_id_shapes():
    assert order_key(b"41") < order_key(b"42")
    assert order_key(b"1795547405:9") < order_key(b"1795547406:0")
    assert order_key(b"[1:2],[3:4]") is None and order_key(None) is None


def test_pack_roundtrip():
    assert unpack_key(pack_key(63, 2**31 + 5)) == (63, 2**31 + 5)
