"""A real HTTP endpoint for the publish proxy and webhook tests: Trio + h11 on
127.0.0.1, a free port, keep-alive, recording every request it gets.

``handler(request)`` decides each answer: it returns ``(status, json_body)`` and may
sleep first (a slow endpoint). Leaving ``open_hook_server`` closes the listener and
every connection (an endpoint that is down).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11
import trio


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self):
        return json.loads(self.body)


Handler = Callable[[Recorded], Awaitable[tuple[int, object]]]


@dataclass
class HookServer:
    url: str
    port: int
    requests: list[Recorded]
    handler: Handler
    _arrived: trio.Event = field(default_factory=trio.Event)

    def record(self, rec: Recorded) -> None:
        self.requests.append(rec)
        self._arrived.set()
        self._arrived = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool], within: float = 10) -> None:
        """Until ``predicate()`` holds, re-checked as each request arrives."""
        with trio.fail_after(within):
            while not predicate():
                await self._arrived.wait()


async def _ok(_: Recorded) -> tuple[int, object]:
    return 200, {}


async def _serve_connection(stream: trio.SocketStream, server: HookServer) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            head = None
            body = b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            assert head is not None
            rec = Recorded(
                head.method.decode(),
                head.target.decode(),
                {k.decode().lower(): v.decode() for k, v in head.headers},
                body,
            )
            server.record(rec)
            status, payload = await server.handler(rec)
            out = json.dumps(payload).encode()
            headers = [("content-type", "application/json"), ("content-length", str(len(out)))]
            data = conn.send(h11.Response(status_code=status, headers=headers))
            data += conn.send(h11.Data(data=out)) + conn.send(h11.EndOfMessage())
            await stream.send_all(data)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
        return
    finally:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await stream.aclose()


@contextlib.asynccontextmanager
async def open_hook_server(handler: Handler | None = None, port: int = 0):
    """Serve on 127.0.0.1 (``port`` 0: a free one) until the block ends."""
    async with trio.open_nursery() as nursery:
        server: HookServer | None = None

        async def handle(stream: trio.SocketStream) -> None:
            assert server is not None
            await _serve_connection(stream, server)

        serve = functools.partial(trio.serve_tcp, handle, port, host="127.0.0.1")
        listeners = await nursery.start(serve)
        real_port = listeners[0].socket.getsockname()[1]
        server = HookServer(f"http://127.0.0.1:{real_port}/hook", real_port, [], handler or _ok)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
