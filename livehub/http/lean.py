"""serve_lean: run an ASGI app on livehub's lean connection layer (``livehub serve``).

Lifespan, listeners and graceful shutdown around :mod:`livehub.http.server`: the app's
lifespan starts first (the service: pool, bus, actors); on the shutdown trigger the
listeners close, idle keep-alive connections close, busy ones finish their response
(``connection: close``) within ``graceful_timeout``, and then the lifespan ends.
"""

from __future__ import annotations

import logging
import socket as stdsocket
from collections.abc import Awaitable, Callable

import trio

from livehub.http import hypercorn_internals
from livehub.http.server import ServerState, serve_listeners

log = logging.getLogger("livehub.server")


class LifespanFailed(RuntimeError):
    """The app refused to start (its startup raised or it sent startup.failed)."""


class _Lifespan:
    """The ASGI lifespan protocol, driven from one task."""

    def __init__(self, app) -> None:
        self.app = app
        self.state: dict = {}
        self._to_app_send, self._to_app = trio.open_memory_channel[dict](2)
        self.started = trio.Event()
        self.stopped = trio.Event()
        self.failure: str | None = None

    async def run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        try:
            await self.app(scope, self._to_app.receive, self._send)
        except Exception as exc:
            if not self.started.is_set():
                self.failure = f"lifespan startup raised {exc!r}"
                log.exception("app startup failed")
        finally:
            self.started.set()
            self.stopped.set()

    async def _send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.failed":
            self.failure = message.get("message", "startup failed")
            self.started.set()
        elif kind == "lifespan.startup.complete":
            self.started.set()
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            self.stopped.set()

    async def startup(self) -> None:
        await self._to_app_send.send({"type": "lifespan.startup"})
        await self.started.wait()
        if self.failure is not None:
            raise LifespanFailed(self.failure)

    async def shutdown(self) -> None:
        if not self.stopped.is_set():
            await self._to_app_send.send({"type": "lifespan.shutdown"})
            await self.stopped.wait()


async def serve_lean(
    app,
    config,
    *,
    body_timeout: float,
    sockets: list[stdsocket.socket] | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``sockets`` (listening already; default: bind ``config.bind``)
    until ``shutdown_trigger`` returns. ``config`` is a Hypercorn Config: its
    keep_alive_timeout, graceful_timeout, h11_max_incomplete_size, root_path and (for
    WebSocket, served by Hypercorn's own layer) websocket settings apply.

    Resource handling: the listeners and every connection are closed on return.
    """
    owned = sockets is None
    if sockets is None:
        created = config.create_sockets()
        sockets = created.insecure_sockets
        for sock in sockets:
            sock.listen(config.backlog)
    lifespan = _Lifespan(app)
    handoff = (
        hypercorn_internals.websocket_handoff(app, config, lifespan.state)
        if hypercorn_internals.probe().websocket_handoff
        else None
    )
    state = ServerState(
        app,
        keep_alive_timeout=config.keep_alive_timeout,
        body_timeout=body_timeout,
        max_head_bytes=config.h11_max_incomplete_size,
        root_path=config.root_path,
        lifespan_state=lifespan.state,
        websocket_handoff=handoff,
    )
    try:
        async with trio.open_nursery() as lifespan_nursery:
            lifespan_nursery.start_soon(lifespan.run)
            await lifespan.startup()
            listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(s)) for s in sockets]
            binds = [_bind_url(s) for s in sockets]
            async with trio.open_nursery() as conn_nursery:
                accept_scope = trio.CancelScope()

                async def accept() -> None:
                    with accept_scope:
                        await serve_listeners(state, listeners, handler_nursery=conn_nursery)

                conn_nursery.start_soon(accept)
                for url in binds:
                    log.info("serving", extra={"url": url, "server": "lean"})
                task_status.started(binds)
                if shutdown_trigger is None:
                    await trio.sleep_forever()
                await shutdown_trigger()
                accept_scope.cancel()
                state.terminate()
                if handoff is not None:
                    await handoff.context.terminated.set()
                conn_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
            await lifespan.shutdown()
            lifespan_nursery.cancel_scope.cancel()
    finally:
        if owned:
            for sock in sockets:
                sock.close()


def _bind_url(sock: stdsocket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if sock.family == stdsocket.AF_INET6:
        host = f"[{host}]"
    return f"http://{host}:{port}"
