"""Everything of livehub that knows Hypercorn's internals, probed once at start.

Three things reach past Hypercorn's public API, all here:

1. A fix for its trio connection layer (``hypercorn.trio.tcp_server.TCPServer``): a
   request whose body is shorter than its Content-Length, closed by the client while
   the app answers, made ``_close`` call ``send_eof`` while the app's ``send_all`` was
   in progress. Trio raised ``BusyResourceError``, which escaped ``TCPServer.run`` and
   took the whole worker down (200 such requests stopped a node in 0.13 s). With the
   fix, ``_close`` takes the connection's send lock and a send that finds the stream
   busy or closed is the end of that connection only. Applied by :func:`install` (from
   ``create_app``), so ``hypercorn --config hypercorn.toml livehub.asgi:app`` has it too.
2. Direct writes under Hypercorn (:func:`socket_owner`): the ASGI ``send`` chain
   (``HTTPStream`` -> ``H11Protocol`` -> ``TCPServer``) is checked by type, and its
   send lock says when Hypercorn is sending.
3. The lean server hands WebSocket upgrades to Hypercorn's ``TCPServer``
   (:func:`websocket_handoff`), which speaks WebSocket through wsproto.
4. A WebSocket frame wsproto cannot parse closes with its close code. wsproto reports
   a text frame holding invalid UTF-8 (1007), or a protocol error (1002), as a
   ``CloseConnection`` event while the connection is still open; Hypercorn 0.18's
   ``WSStream._handle_events`` sends a close frame only in answer to the client's own
   close, so it dropped the TCP connection without one (RFC 6455 7.1.7 wants the close
   frame with the code). :func:`_handle_events` is Hypercorn's, plus that case; it is
   installed only on the Hypercorn versions it was checked against (a warning else).

If Hypercorn's internals move, :func:`probe` says which of these are off, and each
falls back to the ordinary path (the fix aside, which then cannot be applied).
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass

import trio
from hypercorn.protocol import ws_stream
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping

log = logging.getLogger("livehub.hypercorn")

try:  # pragma: no branch - Hypercorn is a dependency; its layout is what may change
    from hypercorn.protocol.h11 import H11Protocol
    from hypercorn.protocol.http_stream import HTTPStream
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
except ImportError:  # pragma: no cover
    H11Protocol = HTTPStream = TCPServer = WorkerContext = None  # type: ignore[assignment]


WS_FIX_VERSIONS = ("0.18.0",)  # the Hypercorn releases the WebSocket fix was checked on


@dataclass(frozen=True)
class Probe:
    close_fix: bool  # TCPServer's send/close race is fixed
    direct_writes: bool  # direct SSE writes under Hypercorn's trio worker
    websocket_handoff: bool  # the lean server can hand WebSocket upgrades to Hypercorn
    websocket_close_codes: bool  # unparseable frames close with wsproto's code


_installed = False
_probe: Probe | None = None


def probe() -> Probe:
    """What of Hypercorn's internals is where livehub expects it (computed once)."""
    global _probe
    if _probe is None:
        tcp_ok = TCPServer is not None and all(
            hasattr(TCPServer, name) for name in ("protocol_send", "_close", "run")
        )
        _probe = Probe(
            close_fix=tcp_ok,
            direct_writes=tcp_ok and H11Protocol is not None and HTTPStream is not None,
            websocket_handoff=tcp_ok and WorkerContext is not None,
            websocket_close_codes=importlib.metadata.version("hypercorn") in WS_FIX_VERSIONS,
        )
    return _probe


def install() -> Probe:
    """Apply the TCPServer fix (once per process) and log what is on."""
    global _installed
    found = probe()
    if _installed:
        return found
    _installed = True
    if found.close_fix:
        TCPServer.protocol_send = _protocol_send
        TCPServer._close = _close
    if found.websocket_close_codes:
        ws_stream.WSStream._handle_events = _handle_events
    level = logging.INFO if all(vars(found).values()) else logging.WARNING
    log.log(
        level,
        "hypercorn internals",
        extra={"hypercorn": importlib.metadata.version("hypercorn"), **vars(found)},
    )
    return found


async def _handle_events(self: ws_stream.WSStream) -> None:
    for event in self.connection.events():
        if isinstance(event, Message):
            try:
                self.buffer.extend(event)
            except ws_stream.FrameTooLargeError:
                await self._send_wsproto_event(
                    CloseConnection(code=ws_stream.CloseReason.MESSAGE_TOO_BIG)
                )
                break

            if event.message_finished:
                await self.app_put(self.buffer.to_message())
                self.buffer.clear()
        elif isinstance(event, Ping):
            await self._send_wsproto_event(event.response())
        elif isinstance(event, CloseConnection):
            if self.connection.state == ConnectionState.REMOTE_CLOSING:
                await self._send_wsproto_event(event.response())
            elif self.connection.state == ConnectionState.OPEN:
                # The fix: a frame wsproto could not parse. Close with its code.
                await self._send_wsproto_event(
                    CloseConnection(code=event.code, reason=event.reason)
                )
            await self.send(ws_stream.StreamClosed(stream_id=self.stream_id))


_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError)


async def _protocol_send(self, event) -> None:
    """``TCPServer.protocol_send`` with every write failure ending the connection."""
    from hypercorn.events import Closed, RawData, Updated

    if isinstance(event, RawData):
        async with self.send_lock:
            try:
                with trio.CancelScope(shield=True):
                    await self.stream.send_all(event.data)
            except _GONE:
                await self.protocol.handle(Closed())
    elif isinstance(event, Closed):
        await self._close()
        await self.protocol.handle(Closed())
    elif isinstance(event, Updated):
        if event.idle:
            await self.idle_task.restart(self._task_group, self._idle_timeout)
        else:
            await self.idle_task.stop()


async def _close(self) -> None:
    """``TCPServer._close`` under the send lock, so it never races a write."""
    with trio.CancelScope(shield=True):
        async with self.send_lock:
            try:
                await self.stream.send_eof()
            except (*_GONE, AttributeError, OSError):
                pass
            try:
                await self.stream.aclose()
            except (*_GONE, OSError):
                pass


class _HypercornOwner:
    def __init__(self, tcp) -> None:
        self._tcp = tcp

    def busy(self) -> bool:
        return self._tcp.send_lock.locked()

    def fileno(self) -> int:
        return self._tcp.stream.socket.fileno()

    async def write_all(self, data: bytes) -> None:
        async with self._tcp.send_lock:
            await self._tcp.stream.send_all(data)


def socket_owner(scope: dict):
    """``(owner, chunked)`` for a request served by Hypercorn's trio worker over
    HTTP/1.x without TLS, else None."""
    if not probe().direct_writes:
        return None
    send = scope.get(SCOPE_KEY)
    stream = getattr(send, "__self__", None)
    if not isinstance(stream, HTTPStream):
        return None
    protocol = getattr(stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return None
    tcp = getattr(protocol.send, "__self__", None)
    if not isinstance(tcp, TCPServer) or not hasattr(tcp.stream, "socket"):
        return None  # TLS (SSLStream) or a different server: not ours to bypass
    if not isinstance(getattr(tcp, "send_lock", None), trio.Lock):
        return None
    version = getattr(protocol.connection, "their_http_version", None)
    return _HypercornOwner(tcp), version == b"1.1"


SCOPE_KEY = "livehub.raw_send"


def capture_raw_send(app):
    """Wrap an ASGI app so handlers can find the server's raw ASGI ``send`` (the start
    of the chain :func:`socket_owner` checks)."""

    async def asgi_app(scope, receive, send):
        if scope["type"] == "http":
            scope[SCOPE_KEY] = send
        return await app(scope, receive, send)

    return asgi_app


class _ReplayStream(trio.abc.HalfCloseableStream):
    """A socket stream whose first bytes are the request the lean server already read."""

    def __init__(self, inner: trio.SocketStream, prefix: bytes) -> None:
        self._inner = inner
        self._prefix = prefix
        self.socket = inner.socket

    async def receive_some(self, max_bytes=None) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            await trio.lowlevel.checkpoint()
            return data
        return await self._inner.receive_some(max_bytes)

    async def send_all(self, data) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()


def websocket_handoff(app, config, lifespan_state: dict):
    """The lean server's handler for a WebSocket upgrade: Hypercorn's own trio
    connection layer serves the rest of the connection. ``app`` is the ASGI app."""
    from hypercorn.typing import ConnectionState
    from hypercorn.utils import wrap_app

    wrapped = wrap_app(app, config.wsgi_max_body_size, None)
    context = WorkerContext(None)

    async def handoff(stream: trio.SocketStream, request_bytes: bytes) -> None:
        server = TCPServer(
            wrapped,
            config,
            context,
            ConnectionState(dict(lifespan_state)),
            _ReplayStream(stream, request_bytes),
        )
        await server.run()

    handoff.context = context  # the server sets context.terminated at shutdown
    return handoff
