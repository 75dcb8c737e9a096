"""The lean Trio connection layer ``livehub serve`` runs: HTTP/1.1 by h11, ASGI apps inline.

Why: per request, Hypercorn's trio adapter restarts a keep-alive task through
``nursery.start``, spawns a task and a memory channel for the app, and writes the
headers, the body and the end of the message as three ``send_all`` calls, each under
a lock in a shielded scope (docs/ARCHITECTURE.md, "The serving path"). For a POST
answered in a few hundred microseconds that was most of the cost. Here one task per
connection does everything:

- h11 parses every byte (no parser of ours); the request head must arrive within
  ``keep_alive_timeout`` of the previous response (or of the connect) and, once it has
  started, within ``body_timeout``: a deadline on the read, not a restarted task;
- the ASGI app runs *inline* in the connection's task: HTTP/1.1 serves one request
  at a time, so no task, channel or lock is needed per request. ``receive()`` reads
  the body from the socket itself (bounded by ``body_timeout``: 408 when it stalls);
- the response head is held until the first body part, so a response sent at once
  is one socket write (head, body and end of message together);
- a WebSocket upgrade hands the connection, request bytes included, to Hypercorn's own
  trio server (:mod:`livehub.http.hypercorn_internals`), which speaks WebSocket;
  ``Upgrade: h2c`` is ignored (answered over HTTP/1.1, which RFC 9110 allows) and a
  prior-knowledge HTTP/2 preface is refused by h11 with 400: one HTTP/2 connection
  cannot hold a hundred stream slots here;
- a client that breaks the protocol, sends too much, stalls or vanishes ends its own
  connection only; an app error is a 500 for that request, logged with its id.

The HTTP/1.x rules around h11 (refusals, error bodies, the replayed head) are the pure
functions of ``livehub/http/h1.py``. A streaming handler may take the connection's
socket for direct writes (:class:`Connection` is in ``scope["extensions"]``, see
``livehub/http/transport.py``).
"""

from __future__ import annotations

import logging
import math
import socket as stdsocket
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import h11
import trio

from livehub.http import h1
from livehub.node import logs

log = logging.getLogger("livehub.server")

MAX_RECV = 65536
LEAN_EXTENSION = "livehub.connection"
NO_BODY_STATUSES = frozenset({204, 304})

App = Callable[[dict, Callable, Callable], Awaitable[None]]


class ServerState:
    """What every connection of one server shares: the app, the limits, and shutdown."""

    def __init__(
        self,
        app: App,
        *,
        keep_alive_timeout: float,
        body_timeout: float,
        max_head_bytes: int,
        root_path: str = "",
        lifespan_state: dict | None = None,
        websocket_handoff: Callable | None = None,
    ) -> None:
        self.app = app
        self.keep_alive_timeout = keep_alive_timeout
        self.body_timeout = body_timeout
        self.max_head_bytes = max_head_bytes
        self.root_path = root_path
        self.lifespan_state = lifespan_state if lifespan_state is not None else {}
        self.websocket_handoff = websocket_handoff
        self.date = h1.DateHeader()
        self.terminating = False
        self._idle: set[trio.CancelScope] = set()

    def terminate(self) -> None:
        """Stop serving new requests: idle keep-alive connections close now; busy ones
        close after their current response."""
        self.terminating = True
        for scope in list(self._idle):
            scope.cancel()


class ClientGone(Exception):
    """The client closed its side of the connection."""


class Connection:
    """One client connection: h11 state, its socket, and the request being served."""

    def __init__(self, state: ServerState, stream: trio.SocketStream) -> None:
        self.state = state
        self.stream = stream
        self.socket = stream.socket
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=state.max_head_bytes)
        self.client = _addr(self.socket, "getpeername")
        self.server = _addr(self.socket, "getsockname")
        self.sending = False  # a send_all of ours is in progress (direct writers wait)
        self.closed = False
        self._taken = False  # a streaming handler writes to the socket itself
        self._request: h11.Request | None = None
        self._response_start: dict | None = None
        self._response_started = False
        self._body_done = False
        self._body_deadline = math.inf
        self._body_timed_out = False
        self._disconnected = False
        self._suppress_body = False

    # -- the connection's one task --
    async def serve(self) -> None:
        try:
            while not self.state.terminating:
                request = await self._next_request()
                if request is None:
                    return
                if h1.is_websocket_upgrade(request) and self.state.websocket_handoff is not None:
                    await self.state.websocket_handoff(
                        self.stream, h1.replay_bytes(request, self.h11.trailing_data[0])
                    )
                    self.closed = True
                    return
                await self._serve_request(request)
                if not await self._finish_cycle():
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, ClientGone):
            pass
        except OSError:
            pass
        finally:
            self.closed = True
            with trio.CancelScope(shield=True):
                await _close(self.stream)

    async def _next_request(self) -> h11.Request | None:
        """The next request head; None when the connection should end quietly."""
        idle = trio.CancelScope(deadline=trio.current_time() + self.state.keep_alive_timeout)
        self.state._idle.add(idle)
        try:
            with idle:
                while True:
                    try:
                        event = self.h11.next_event()
                    except h11.RemoteProtocolError as exc:
                        await self._protocol_error(exc.error_status_hint)
                        return None
                    if event is h11.NEED_DATA:
                        data = await self.stream.receive_some(MAX_RECV)
                        if not data:
                            return None
                        if idle in self.state._idle:
                            # The head has started: it must now arrive within body_timeout
                            # (a slowloris cannot hold the connection for keep_alive_timeout).
                            self.state._idle.discard(idle)
                            idle.deadline = trio.current_time() + self.state.body_timeout
                        self.h11.receive_data(data)
                        continue
                    if isinstance(event, h11.Request):
                        refusal = h1.refusal(event, self.state.max_head_bytes)
                        if refusal:
                            await self._protocol_error(refusal)
                            return None
                        return event
                    return None  # ConnectionClosed or PAUSED with nothing to serve
        finally:
            self.state._idle.discard(idle)
        if idle.cancelled_caught and not self.state.terminating:
            if self.h11.their_state is h11.SEND_BODY or _has_partial_head(self.h11):
                await self._protocol_error(408)
        return None

    async def _serve_request(self, request: h11.Request) -> None:
        self._request = request
        self._response_start = None
        self._response_started = False
        self._body_done = False
        self._body_timed_out = False
        self._body_deadline = trio.current_time() + self.state.body_timeout
        method = request.method.decode("ascii").upper()
        self._suppress_body = method == "HEAD"
        target = request.target
        path, _, query = target.partition(b"?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version.decode("ascii"),
            "method": method,
            "scheme": "http",
            "path": unquote(path.decode("ascii", "replace")),
            "raw_path": path,
            "query_string": query,
            "root_path": self.state.root_path,
            "headers": list(request.headers),
            "client": self.client,
            "server": self.server,
            "state": dict(self.state.lifespan_state),
            "extensions": {LEAN_EXTENSION: self},
        }
        try:
            await self.state.app(scope, self.receive, self.send)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ClientGone):
            raise
        except Exception:
            log.exception(
                "unhandled error in the app", extra={"path": scope["path"], "method": method}
            )
            if not self._response_started:
                await self._send_error(500)
            return
        if not self._response_started:
            if self._body_timed_out:
                await self._send_error(408)
            else:
                await self._send_error(500)
        elif self.h11.our_state is h11.SEND_BODY:
            # The app returned mid-response: end the body (an unfinished chunked body
            # would be malformed), then the connection closes.
            await self.write(self.h11.send(h11.EndOfMessage()))

    async def _finish_cycle(self) -> bool:
        """Get ready for the next request; False: close the connection."""
        if self.h11.our_state is not h11.DONE or self._taken:
            return False
        if self.h11.their_state is h11.SEND_BODY:
            # The app answered without reading the whole body: read (and drop) the rest,
            # bounded by body_timeout, or close.
            if not await self._discard_body():
                return False
        if self.h11.their_state is not h11.DONE or self.state.terminating:
            return False
        try:
            self.h11.start_next_cycle()
        except h11.LocalProtocolError:
            return False
        return True

    async def _discard_body(self) -> bool:
        with trio.move_on_at(self._body_deadline):
            while True:
                msg = await self.receive()
                if msg["type"] == "http.disconnect":
                    return False
                if not msg.get("more_body"):
                    return True
        return False

    # -- ASGI --
    async def receive(self) -> dict:
        if self._disconnected:
            return {"type": "http.disconnect"}
        if self._body_done:
            await self.wait_disconnect()
            return {"type": "http.disconnect"}
        try:
            event = self.h11.next_event()  # a small body came with the head: no wait
        except h11.RemoteProtocolError:
            event = None
        if event is h11.NEED_DATA:
            if self.h11.they_are_waiting_for_100_continue:
                # The client holds the body back until told to send it (Expect:
                # 100-continue); the app asking for it is that moment.
                await self.write(
                    self.h11.send(h11.InformationalResponse(status_code=100, headers=[]))
                )
            with trio.move_on_at(self._body_deadline) as scope:
                event = await self._next_body_event()
            if scope.cancelled_caught:
                self._body_timed_out = True
                self._disconnected = True
                return {"type": "http.disconnect"}
        if isinstance(event, h11.Data):
            return {"type": "http.request", "body": bytes(event.data), "more_body": True}
        if isinstance(event, h11.EndOfMessage):
            self._body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        self._disconnected = True
        return {"type": "http.disconnect"}

    async def _next_body_event(self):
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                return None  # a bad chunked body, a short body at EOF: the client's problem
            if event is h11.NEED_DATA:
                data = await self.stream.receive_some(MAX_RECV)
                self.h11.receive_data(data)
                continue
            return event

    async def wait_disconnect(self) -> None:
        """Wait until the client closes its side. Data it sends meanwhile (a pipelined
        next request) stays buffered in h11, up to the head limit, past which the
        client is cut off."""
        while True:
            data = await self.stream.receive_some(MAX_RECV)
            if not data:
                self._disconnected = True
                return
            self.h11.receive_data(data)
            if len(self.h11.trailing_data[0]) > self.state.max_head_bytes:
                self._disconnected = True
                raise ClientGone()

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self._response_started or self._response_start is not None:
                raise RuntimeError("http.response.start sent twice")
            self._response_start = message
            return
        if kind != "http.response.body":
            return  # trailers, push, early hints: not for HTTP/1.1
        body = message.get("body", b"")
        more = message.get("more_body", False)
        out = []
        if self._response_start is not None:
            start, self._response_start = self._response_start, None
            out.append(self._head(start, None if more else len(body)))
            self._response_started = True
        elif not self._response_started:
            raise RuntimeError("http.response.body before http.response.start")
        if self.h11.our_state is not h11.SEND_BODY:
            return  # already ended
        if body and not self._suppress_body:
            out.append(self.h11.send(h11.Data(data=body)))
        if not more:
            out.append(self.h11.send(h11.EndOfMessage()))
        data = b"".join(out)
        if data:
            await self.write(data)

    def take_socket(self) -> trio.socket.SocketType:
        """A streaming handler will write to the socket itself (direct writes): bytes
        may bypass h11 from now on, so the connection ends with this response."""
        self._taken = True
        return self.socket

    def _head(self, start: dict, length: int | None) -> bytes:
        status = int(start["status"])
        headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", ())]
        names = {k for k, _ in headers}
        if status in NO_BODY_STATUSES:
            self._suppress_body = True
        elif length is not None and b"content-length" not in names:
            if b"transfer-encoding" not in names:
                headers.append((b"content-length", b"%d" % length))
        if b"date" not in names:
            headers.append((b"date", self.state.date.value()))
        if self.state.terminating:
            headers.append((b"connection", b"close"))
        return self.h11.send(h11.Response(status_code=status, headers=headers))

    async def write(self, data: bytes) -> None:
        """Send bytes on the socket (h11 framed them, or the direct transport did);
        direct writers see ``sending`` meanwhile and leave the socket alone."""
        self.sending = True
        try:
            await self.stream.send_all(data)
        finally:
            self.sending = False

    async def _send_error(self, status: int) -> None:
        """A JSON error of our own, then the connection closes."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = h1.ERROR_BODIES.get(status, h1.ERROR_BODIES[400])
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
            (b"date", self.state.date.value()),
        ]
        rid = logs.request_id.get(None)
        if rid:
            headers.append((b"x-request-id", rid.encode("ascii", "replace")))
        try:
            data = self.h11.send(h11.Response(status_code=status, headers=headers))
            if not self._suppress_body:
                data += self.h11.send(h11.Data(data=body))
            data += self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        self._response_started = True
        await self.write(data)

    async def _protocol_error(self, status: int) -> None:
        try:
            await self._send_error(status if status in h1.ERROR_BODIES else 400)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def _addr(sock, method: str) -> tuple[str, int] | None:
    try:
        addr = getattr(sock, method)()
    except OSError:
        return None
    if sock.family in (stdsocket.AF_INET, stdsocket.AF_INET6):
        return (addr[0], addr[1])
    return None


def _has_partial_head(conn: h11.Connection) -> bool:
    return conn.their_state is h11.IDLE and bool(conn.trailing_data[0])


async def _close(stream: trio.SocketStream) -> None:
    try:
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def serve_listeners(
    state: ServerState,
    listeners: list[trio.SocketListener],
    *,
    handler_nursery: trio.Nursery | None = None,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept on ``listeners`` and serve each connection in a task of its own (in
    ``handler_nursery``, so connections can outlive the accept loops at shutdown) until
    cancelled. Resource handling: every connection's socket is closed when its task
    ends, however it ends."""

    async def handle(stream: trio.SocketStream) -> None:
        await Connection(state, stream).serve()

    await trio.serve_listeners(
        handle, listeners, handler_nursery=handler_nursery, task_status=task_status
    )
