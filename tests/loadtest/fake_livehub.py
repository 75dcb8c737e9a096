"""A tiny in-test stand-in for livehub's HTTP surface, to drive the load tester end to end.

Speaks just enough HTTP/1.1: POST /comments/{video} -> 201 with the stored comment JSON
(keep-alive); GET /comments/{video}/stream -> chunked SSE like Hypercorn's, coalescing
queued events into one chunk, with ``retry:``, ``: ping`` and ``event: viewers`` noise,
and Last-Event-ID resume from its in-memory history. ``drop_seq`` makes it lose one
event on purpose, so the audit can be seen failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import trio

QUEUE = 10_000


@dataclass
class FakeLivehub:
    drop_seq: int | None = None
    history: dict[str, list[bytes]] = field(default_factory=dict)
    subscribers: dict[str, set[trio.MemorySendChannel]] = field(default_factory=dict)

    def _post(self, video: str, body: bytes) -> bytes:
        message = json.loads(body)["message"]
        events = self.history.setdefault(video, [])
        seq = len(events) + 1
        comment = json.dumps(
            {
                "video_id": video,
                "seq": seq,
                "user_id": "u",
                "message": message,
                "created_at": "2025-01-01T00:00:00Z",
            }
        ).encode()
        event = b"id: %d\nevent: comment\ndata: %s\n\n" % (seq, comment)
        events.append(event)
        if seq != self.drop_seq:
            for sub in self.subscribers.get(video, ()):
                sub.send_nowait(event)
        return comment

    async def handle(self, stream: trio.SocketStream) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ")
                headers = {
                    k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
                }
                if method == "POST":
                    length = int(headers["content-length"])
                    while len(buf) < length:
                        buf += await stream.receive_some(65536)
                    body, buf = buf[:length], buf[length:]
                    reply = self._post(path.split("/")[2], body)
                    await stream.send_all(
                        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(reply), reply)
                    )
                else:
                    await self._stream(stream, path.split("/")[2], headers.get("last-event-id"))
                    return
        except trio.BrokenResourceError:
            return

    async def _stream(self, stream: trio.SocketStream, video: str, last: str | None) -> None:
        send, recv = trio.open_memory_channel(QUEUE)
        self.subscribers.setdefault(video, set()).add(send)
        try:
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\nserver: hypercorn-h11\r\n\r\n"
            )
            first = b"retry: 1000\n\n: ping\n\nevent: viewers\ndata: 3\n\n"
            if last is not None:
                first += b"".join(self.history.get(video, [])[int(last) :])
            await _chunk(stream, first)
            while True:
                batch = [await recv.receive()]
                while True:
                    try:
                        batch.append(recv.receive_nowait())
                    except trio.WouldBlock:
                        break
                await _chunk(stream, b"".join(batch))
        finally:
            self.subscribers[video].discard(send)


async def _chunk(stream: trio.SocketStream, data: bytes) -> None:
    # split each write into two chunks at an awkward place, as a proxy might
    cut = len(data) // 3
    for part in (data[:cut], data[cut:]):
        if part:
            await stream.send_all(b"%x\r\n%s\r\n" % (len(part), part))


async def serve_fake(fake: FakeLivehub, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(fake.handle, listeners)
