"""The WebSocket viewer's pure pieces: handshake, frames split across reads, comment seq."""

import json
import struct

import pytest
from livehub_loadtest.cli import _parser, build_config, main
from livehub_loadtest.http1 import ResponseHead
from livehub_loadtest.sse import find_token, make_message
from livehub_loadtest.ws import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    WsParser,
    WsProtocolError,
    accept_value,
    check_handshake,
    client_frame,
    comment_seq,
    handshake_request,
)

RUN = "ab12"
MARKER = f"lt {RUN} ".encode()


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A server frame (unmasked), with the 7-, 16- or 64-bit length form as needed."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes((b0, n))
    elif n < 1 << 16:
        head = bytes((b0, 126)) + struct.pack("!H", n)
    else:
        head = bytes((b0, 127)) + struct.pack("!Q", n)
    return head + payload


def comment_message(seq: int, message: str) -> bytes:
    # exactly as livehub/http/ws.py writes it: prefix + the comment's compact JSON + "}"
    comment = {
        "video_id": "v",
        "seq": seq,
        "user_id": "u",
        "message": message,
        "created_at": "2025-01-01T00:00:00Z",
    }
    return (
        '{"type":"comment","comment":' + json.dumps(comment, separators=(",", ":")) + "}"
    ).encode()


MESSAGES = [
    b'{"type":"viewers","count":12}',
    comment_message(1, make_message(RUN, 0, 0, 111)),
    b'{"type":"ping"}',
    comment_message(2, make_message(RUN, 1, 0, 222, pad_to=300)),  # 16-bit length
    comment_message(70000, make_message(RUN, 0, 1, 333, pad_to=70000)),  # 64-bit length
]
STREAM = b"".join(frame(m) for m in MESSAGES)


def test_handshake_request_and_accept():
    # RFC 6455 section 1.3's example key and answer
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    assert accept_value(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    request, got = handshake_request("/comments/v/ws?last_event_id=7", "h:1", key)
    assert got == key
    head = request.decode()
    assert head.startswith("GET /comments/v/ws?last_event_id=7 HTTP/1.1\r\nHost: h:1\r\n")
    for line in ("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"):
        assert line + "\r\n" in head
    assert head.endswith("\r\n\r\n") and "Content-Length" not in head
    _, fresh = handshake_request("/p", "h")
    assert fresh != key and len(fresh) == 24


def test_check_handshake():
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    good = {"upgrade": "websocket", "sec-websocket-accept": accept_value(key)}
    check_handshake(ResponseHead(101, good), key)
    with pytest.raises(WsProtocolError, match="status 503"):
        check_handshake(ResponseHead(503, {}), key)
    with pytest.raises(WsProtocolError, match="Accept"):
        check_handshake(ResponseHead(101, {**good, "sec-websocket-accept": "x"}), key)
    with pytest.raises(WsProtocolError, match="extension"):
        check_handshake(ResponseHead(101, {**good, "sec-websocket-extensions": "deflate"}), key)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 125, 4096, len(STREAM)])
def test_parser_split_anywhere(step):
    parser = WsParser()
    got = []
    for i in range(0, len(STREAM), step):
        got.extend(parser.feed(STREAM[i : i + step]))
    assert got == MESSAGES
    assert parser.pings == [] and parser.close_code is None


def test_comment_seq_and_token():
    found = [(comment_seq(m), find_token(m, MARKER)) for m in MESSAGES]
    assert [s for s, _ in found] == [None, 1, None, 2, 70000]
    assert [(t.poster, t.n, t.send_ns) for s, t in found if s] == [
        (0, 0, 111),
        (1, 0, 222),
        (0, 1, 333),
    ]
    # a quoted "seq" inside the message text is escaped in JSON, so never matches
    tricky = comment_message(5, 'say "seq":99 ' + make_message(RUN, 2, 3, 444))
    assert comment_seq(tricky) == 5
    assert comment_seq(b'{"type":"posted","comment":{"seq":9}}') is None


def test_fragments_pings_and_close():
    parser = WsParser()
    data = (
        frame(b'{"type":', fin=False)
        + frame(b"ping", OP_PING)  # control frames may come between fragments
        + frame(b'"pi', opcode=0x0, fin=False)
        + frame(b'ng"}', opcode=0x0)
        + frame(b"", OP_PONG)
        + frame(struct.pack("!H", 1013) + b"reconnect", OP_CLOSE)
        + frame(b"after close")
    )
    assert parser.feed(data) == [b'{"type":"ping"}']
    assert parser.pings == [b"ping"] and parser.close_code == 1013


@pytest.mark.parametrize(
    "data",
    [
        bytes((0x81, 0x81)) + b"mask" + b"x",  # masked by the server
        bytes((0xC1, 0x01)) + b"x",  # RSV1 (permessage-deflate) was never agreed
        frame(b"x", opcode=0x0),  # continuation without a start
        frame(b"x", opcode=0x3),  # reserved opcode
        bytes((0x81, 127)) + struct.pack("!Q", 1 << 40),  # absurd length
    ],
)
def test_parser_refuses(data):
    with pytest.raises(WsProtocolError):
        WsParser().feed(data)


def test_client_frame_is_masked():
    mask = b"\x01\x02\x03\x04"
    out = client_frame(OP_PONG, b"abcd", mask)
    assert out[:2] == bytes((0x8A, 0x84)) and out[2:6] == mask
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(out[6:])) == b"abcd"
    assert client_frame(OP_CLOSE)[:2] == bytes((0x88, 0x80))


def test_transport_flag():
    base = ["--url", "http://127.0.0.1:1", "--target", "livehub"]
    assert build_config(_parser().parse_args(base)).transport == "sse"
    assert build_config(_parser().parse_args([*base, "--transport", "ws"])).transport == "ws"


def test_ws_refused_for_nchan(capsys):
    argv = ["--url", "http://127.0.0.1:1", "--target", "nchan", "--transport", "ws"]
    assert main(argv) == 2
    assert "--transport ws needs --target livehub" in capsys.readouterr().err


def test_ws_refused_when_auto_detects_nchan(monkeypatch, capsys):
    async def nginx(*_args):
        return "nchan"

    monkeypatch.setattr("livehub_loadtest.cli.detect_target", nginx)
    assert main(["--url", "http://127.0.0.1:1", "--transport", "ws", "--deadline", "5"]) == 2
    assert "nchan has no /comments/<video>/ws endpoint" in capsys.readouterr().err


def test_moderation_event_messages_have_a_position_and_deletions_a_target():
    from livehub_loadtest.ws import comment_seq, deleted_seq, stream_event

    deleted = b'{"type":"deleted","id":9,"video_id":"v","seq":5}'
    assert stream_event(deleted) == (b"deleted", 9) and deleted_seq(deleted) == 5
    assert comment_seq(deleted) is None
    assert stream_event(b'{"type":"pinned","id":4,"video_id":"v","comment":null}')[1] == 4
    assert stream_event(b'{"type":"viewers","count":3}') is None
    assert stream_event(b'{"type":"pinned","video_id":"v","comment":null}') is None  # snapshot
