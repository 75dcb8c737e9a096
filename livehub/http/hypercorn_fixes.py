"""Fixes to Hypercorn internals, applied once from ``create_app``.

Each one names the Hypercorn version it was written against and is skipped (with a
warning) on any other, so an upgrade cannot silently run a stale copy.

- **A WebSocket frame wsproto cannot parse closes with its close code.** wsproto
  reports a text frame holding invalid UTF-8 (1007), or a protocol error (1002), as
  a ``CloseConnection`` event while the connection is still open; Hypercorn 0.18's
  ``WSStream._handle_events`` sends a close frame only in answer to the client's
  own close, so it dropped the TCP connection without one (RFC 6455 7.1.7 wants the
  close frame with the code). The method below is Hypercorn's, plus that case.
"""

from __future__ import annotations

import importlib.metadata
import logging

from hypercorn.protocol import ws_stream
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping

log = logging.getLogger("livehub.http")

FIXED_VERSIONS = ("0.18.0",)  # the Hypercorn releases these fixes were checked against
_applied = False


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


def apply() -> bool:
    """Install the fixes (idempotent); False when this Hypercorn is not one they fit."""
    global _applied
    if _applied:
        return True
    version = importlib.metadata.version("hypercorn")
    if version not in FIXED_VERSIONS:
        log.warning(
            "hypercorn %s: WebSocket close-code fix not applied (written for %s)",
            version,
            ", ".join(FIXED_VERSIONS),
        )
        return False
    ws_stream.WSStream._handle_events = _handle_events
    _applied = True
    return True
