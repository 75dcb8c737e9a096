"""A raw-socket SSE viewer for tests that need control over reading (slow, stalled,
thousands of connections). The server frames each write as one HTTP chunk and every
chunk holds whole events, so the suite's SSE parser (the load tester's) can read the
raw bytes: a chunk-size line between events is a line with no field it knows."""

from __future__ import annotations

import socket

import trio
from livehub_loadtest.sse import SseParser


async def open_raw_stream(
    url: str, video: str, rcvbuf: int | None = None, headers: str = ""
) -> trio.SocketStream:
    host, port = url.removeprefix("http://").split(":")
    sock = trio.socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    await stream.send_all(
        f"GET /comments/{video}/stream HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode()
    )
    return stream


async def read_until(stream: trio.SocketStream, buf: bytearray, marker: bytes) -> None:
    while marker not in buf:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError("connection closed")
        buf += data


async def read_seqs(stream: trio.SocketStream, last: int) -> list[int]:
    """Every comment seq on the stream until seq ``last`` has been seen."""
    parser = SseParser()
    seqs: list[int] = []
    while not seqs or seqs[-1] < last:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError(f"closed after {len(seqs)} events")
        seqs.extend(int(ev.id) for ev in parser.feed(data) if ev.event == b"comment")
    return seqs
