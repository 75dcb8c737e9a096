"""PURE: the minimal HTTP/1.1 client pieces the load tester needs (no trio here).

Build a request, find and parse a response head, decode chunked bodies incrementally.
Only what our two servers (Hypercorn, nginx) send is handled; anything else is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD_BYTES = 65536  # a response head larger than this is a broken server, not a slow one


class HttpProtocolError(Exception):
    """The peer sent something this minimal client does not understand."""


@dataclass(frozen=True)
class ResponseHead:
    """A parsed status line and headers (names lower-cased)."""

    status: int
    headers: dict[str, str]

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None


def build_request(
    method: str,
    path: str,
    host: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """Return the bytes of one HTTP/1.1 request (keep-alive)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_response_head(buf: bytes | bytearray) -> tuple[ResponseHead, int] | None:
    """Parse a response head at the start of ``buf``.

    Returns:
        ``(head, length_of_head_including_blank_line)``, or None if the head is incomplete.

    Raises:
        HttpProtocolError: malformed status line, or a head over MAX_HEAD_BYTES.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD_BYTES:
            raise HttpProtocolError("response head too large")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpProtocolError(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpProtocolError(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    return ResponseHead(int(parts[1]), headers), end + 4


class ChunkedDecoder:
    """Incremental decoder for ``Transfer-Encoding: chunked``.

    ``feed`` takes whatever the socket returned and gives back the body bytes that are
    complete so far; chunk headers and data may be split anywhere across feeds.
    """

    __slots__ = ("_buf", "_remaining", "done")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._remaining = 0  # data bytes left in the current chunk
        self.done = False  # the terminating zero-size chunk was seen

    def feed(self, data: bytes) -> bytes:
        """Return the decoded body bytes available after adding ``data``."""
        if self.done:
            return b""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        while True:
            if self._remaining > 0:
                take = min(self._remaining, len(buf) - pos)
                if take <= 0:
                    break
                out.append(bytes(buf[pos : pos + take]))
                pos += take
                self._remaining -= take
                if self._remaining > 0:
                    break
                self._remaining = -2  # now expect the CRLF after the chunk data
            if self._remaining == -2:
                if len(buf) - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise HttpProtocolError("missing CRLF after chunk data")
                pos += 2
                self._remaining = 0
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > 1024:
                    raise HttpProtocolError("chunk size line too long")
                break
            size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpProtocolError(f"bad chunk size {size_text!r}") from None
            pos = eol + 2
            if size == 0:
                self.done = True
                break
            self._remaining = size
        del buf[:pos]
        return b"".join(out)
