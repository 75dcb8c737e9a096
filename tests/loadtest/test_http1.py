"""Chunked decoding and response heads, split at every possible place."""

import pytest
from livehub_loadtest.http1 import (
    ChunkedDecoder,
    HttpProtocolError,
    build_request,
    parse_response_head,
)

BODY_PARTS = [b"id: 1\nevent: comment\ndata: {}\n\n", b": ping\n\n", b"x" * 300]


def chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_chunked_whole_stream_in_one_feed():
    decoder = ChunkedDecoder()
    assert decoder.feed(chunked(BODY_PARTS)) == b"".join(BODY_PARTS)
    assert decoder.done


@pytest.mark.parametrize("cut", range(1, len(chunked(BODY_PARTS))))
def test_chunked_split_anywhere_in_two(cut):
    raw = chunked(BODY_PARTS)
    decoder = ChunkedDecoder()
    assert decoder.feed(raw[:cut]) + decoder.feed(raw[cut:]) == b"".join(BODY_PARTS)
    assert decoder.done


def test_chunked_one_byte_at_a_time():
    raw = chunked(BODY_PARTS)
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(raw[i : i + 1]) for i in range(len(raw)))
    assert out == b"".join(BODY_PARTS)


def test_chunked_extension_and_uppercase_hex():
    decoder = ChunkedDecoder()
    assert decoder.feed(b"A;name=v\r\n0123456789\r\n") == b"0123456789"
    assert not decoder.done


def test_chunked_rejects_garbage():
    with pytest.raises(HttpProtocolError):
        ChunkedDecoder().feed(b"zz\r\n")
    with pytest.raises(HttpProtocolError):
        ChunkedDecoder().feed(b"2\r\nabXY")


def test_response_head_incomplete_then_complete():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: hypercorn-h11\r\n\r\n5\r\n"
    assert parse_response_head(raw[:20]) is None
    head, size = parse_response_head(raw)
    assert head.status == 200 and head.chunked
    assert head.headers["server"] == "hypercorn-h11"
    assert raw[size:] == b"5\r\n"


def test_response_head_content_length():
    head, _ = parse_response_head(b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n")
    assert head.content_length == 12 and not head.chunked


def test_response_head_bad_status_line():
    with pytest.raises(HttpProtocolError):
        parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_build_request_post_has_length():
    raw = build_request("POST", "/comments/v", "127.0.0.1:1", {"A": "b"}, b"{}")
    assert raw == (
        b"POST /comments/v HTTP/1.1\r\nHost: 127.0.0.1:1\r\nA: b\r\nContent-Length: 2\r\n\r\n{}"
    )
