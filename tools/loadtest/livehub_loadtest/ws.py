"""PURE: the minimal WebSocket client pieces a load-test viewer needs (no trio here).

Build the opening handshake and check its answer, split the server's frames into
messages (frames may be split anywhere across reads, many may come in one read), frame
the few control messages a client sends, and pull a livehub comment's ``seq`` out of
its message without decoding the JSON.

Only what livehub's ``GET /comments/<video>/ws`` sends is handled: unmasked frames, no
extensions (none is offered), text messages; pings are answered and a close ends it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct

from livehub_loadtest.http1 import ResponseHead, build_request

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
MAX_MESSAGE_BYTES = 1 << 20  # a message larger than this means a broken stream
COMMENT_PREFIX = b'{"type":"comment","comment":'  # as livehub/http/ws.py writes them
_SEQ_RE = re.compile(rb'"seq"\s*:\s*(\d+)')

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


class WsProtocolError(Exception):
    """The server's handshake or frames are not WebSocket as we understand it."""


def handshake_request(path: str, host: str, key: bytes | None = None) -> tuple[bytes, bytes]:
    """The HTTP/1.1 upgrade request for ``path``, and its ``Sec-WebSocket-Key``."""
    key = key or base64.b64encode(os.urandom(16))
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key.decode("ascii"),
        "Sec-WebSocket-Version": "13",
    }
    return build_request("GET", path, host, headers), key


def accept_value(key: bytes) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode("ascii")


def check_handshake(head: ResponseHead, key: bytes) -> None:
    """Raises WsProtocolError unless ``head`` accepts the upgrade we asked for."""
    if head.status != 101:
        raise WsProtocolError(f"ws handshake status {head.status}")
    if head.headers.get("upgrade", "").lower() != "websocket":
        raise WsProtocolError("ws handshake without Upgrade: websocket")
    if head.headers.get("sec-websocket-accept") != accept_value(key):
        raise WsProtocolError("ws handshake with a wrong Sec-WebSocket-Accept")
    if head.headers.get("sec-websocket-extensions"):
        raise WsProtocolError("ws handshake with an extension we did not offer")


def client_frame(opcode: int, payload: bytes = b"", mask: bytes | None = None) -> bytes:
    """One final frame from the client (masked, as RFC 6455 requires); control frames
    carry at most 125 bytes, which is all we send."""
    if len(payload) > 125:
        raise ValueError("client_frame sends control-sized payloads only")
    mask = mask or os.urandom(4)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked


class WsParser:
    """Feed raw bytes from the socket, get back the complete data messages.

    Pings the server sent are kept in ``pings`` for the caller to answer (then clear);
    ``close_code`` is set when the server's close frame arrived (0: it gave no code).
    """

    __slots__ = ("_buf", "_frags", "close_code", "pings")

    def __init__(self) -> None:
        self._buf = b""
        self._frags: list[bytes] | None = None  # a fragmented message so far
        self.pings: list[bytes] = []
        self.close_code: int | None = None

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        size = len(buf)
        pos = 0
        out: list[bytes] = []
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:
                raise WsProtocolError("masked frame from the server")
            if b0 & 0x70:
                raise WsProtocolError("frame with RSV bits (no extension was agreed)")
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if size - start < 2:
                    break
                (length,) = struct.unpack_from("!H", buf, start)
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                (length,) = struct.unpack_from("!Q", buf, start)
                start += 8
            if length > MAX_MESSAGE_BYTES:
                raise WsProtocolError("frame too large")
            end = start + length
            if end > size:
                break
            payload = buf[start:end]
            pos = end
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode in (OP_TEXT, OP_BINARY):
                if self._frags is not None:
                    raise WsProtocolError("new message inside a fragmented one")
                if fin:
                    out.append(payload)
                else:
                    self._frags = [payload]
            elif opcode == OP_CONTINUATION:
                if self._frags is None:
                    raise WsProtocolError("continuation without a message")
                self._frags.append(payload)
                if sum(map(len, self._frags)) > MAX_MESSAGE_BYTES:
                    raise WsProtocolError("message too large")
                if fin:
                    out.append(b"".join(self._frags))
                    self._frags = None
            elif opcode == OP_PING:
                self.pings.append(payload)
            elif opcode == OP_CLOSE:
                self.close_code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 0
                self._buf = b""
                return out  # nothing after a close frame counts
            elif opcode != OP_PONG:
                raise WsProtocolError(f"unknown opcode {opcode:#x}")
        self._buf = buf[pos:] if pos < size else b""
        if len(self._buf) > MAX_MESSAGE_BYTES + 14:
            raise WsProtocolError("frame too large")
        return out


_EVENT_RE = re.compile(rb'\{"type":"([a-z]+)","id":(\d+)')


def stream_event(message: bytes) -> tuple[bytes, int] | None:
    """``(kind, id)`` of a livehub moderation event message
    (``{"type": "deleted", "id": 9, ...}``); None for any other message."""
    match = _EVENT_RE.match(message)
    return (match.group(1), int(match.group(2))) if match else None


def deleted_seq(data: bytes) -> int | None:
    """The deleted comment's ``seq`` in a ``deleted`` event (SSE data or WS message)."""
    match = _SEQ_RE.search(data)
    return int(match.group(1)) if match else None


def comment_seq(message: bytes) -> int | None:
    """The ``seq`` of a livehub ``{"type":"comment",...}`` message; None for any other
    message (``viewers``, ``ping``, ...). The comment's first key holding a number named
    ``seq`` is its own: a quote inside a string value is escaped, so cannot match."""
    if not message.startswith(COMMENT_PREFIX):
        return None
    match = _SEQ_RE.search(message, len(COMMENT_PREFIX))
    return int(match.group(1)) if match else None
