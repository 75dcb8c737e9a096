"""ViewerSession: one viewer of one video, the same over SSE and WebSocket.

It owns what a viewer holds on a node: a stream slot in the gate (full or draining:
503), a gapless :class:`~livehub.actors.feed.Feed`, the streams gauge, and what the viewer is
owed besides comments: the video's viewer count when it changed (checked every
``viewer_count_seconds``) and a ping after ``heartbeat_seconds`` of silence. The
transports only encode what :meth:`ViewerSession.next` returns (``stream.py``: SSE
bytes; ``ws.py``: JSON messages).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import trio

from livehub.actors.feed import Feed
from livehub.actors.subscriber import Frame
from livehub.core import clientaddr


@dataclass(frozen=True, slots=True)
class Due:
    """What one wake-up of a viewer's task owes it: frames, a count, or a ping."""

    frames: list[Frame]
    viewers: int | None  # the video's viewer count, when it changed
    ping: bool


class ViewerSession:
    def __init__(self, svc, video_id: str, scope: dict) -> None:
        self._svc = svc
        self._settings = svc.settings
        self.gate = svc.gate
        self.video_id = video_id
        # The client whose streams count against LIVEHUB_MAX_STREAMS_PER_CLIENT.
        self._client = clientaddr.from_scope(scope, svc.settings.trusted_proxies)
        self.feed = Feed(svc.registry, svc.store, video_id, svc.metrics.catchups_inc)
        self._slot = None
        self.count = 0  # the viewer count this viewer was last told
        now = trio.current_time()
        self._next_ping = now + self._settings.heartbeat_seconds
        self._next_count = now + self._settings.viewer_count_seconds

    async def open(self, after: int | None, backlog: int) -> None:
        """Take a stream slot and subscribe (resuming after ``after``).

        Raises:
            Overloaded, ShuttingDown: no slot (503); TooManyStreams: this client is
                at its cap (429); Unavailable: the video's
                actor could not start. Nothing is held when it raises.
        """
        self._slot = self.gate.open_stream(self.video_id, self._client)
        try:
            await self.feed.start(after, min(backlog, self._settings.max_backlog))
        except BaseException:
            self.close()
            raise
        self.count = self._svc.viewers.total(self.video_id)

    def close(self) -> None:
        """Release the subscription and the slot (idempotent)."""
        self.feed.close()
        if self._slot is not None:
            self._slot.close()
            self._slot = None

    async def next(self) -> Due:
        """Wait for frames, or for a viewer count or a ping to fall due.

        Raises:
            Draining: the node shuts down (end the stream with a reconnect hint).
            Unavailable: the viewer cannot continue gaplessly now.
        """
        while True:
            deadline = min(self._next_ping, self._next_count)
            frames = await self.gate.wait(self.feed.next_batch, deadline)
            now = trio.current_time()
            viewers = None
            if now >= self._next_count:
                self._next_count = now + self._settings.viewer_count_seconds
                n = self._svc.viewers.total(self.video_id)
                if n != self.count:
                    self.count = viewers = n
            if frames or viewers is not None:
                self._next_ping = now + self._settings.heartbeat_seconds
                return Due(frames or [], viewers, False)
            if now >= self._next_ping:
                self._next_ping = now + self._settings.heartbeat_seconds
                return Due([], None, True)
            if frames is not None:
                return Due([], None, False)  # a direct write's tail to finish

    async def next_direct(self) -> list[Frame]:
        """With a direct transport attached: the actor writes live frames, pings and
        counts to the socket itself while the viewer is idle; this waits only for what
        it queued instead (catch-up, a lag, an unfinished write: [] then).

        Raises:
            Draining, Unavailable: as :meth:`next`.
        """
        self.feed.set_direct_ready(True)
        try:
            return await self.gate.wait(self.feed.next_batch, math.inf)
        finally:
            self.feed.set_direct_ready(False)
