"""Subscription: what a VideoActor hands a viewer. Bounded; the actor never waits on it.

The actor pushes frames with :meth:`Subscription.push_nowait`; the viewer's task
takes everything queued at once with :meth:`Subscription.receive_batch`. When the
viewer falls behind by more than ``max_frames`` the queue is dropped and the viewer
is told :class:`Lagged`: it then catches up from Postgres from the last seq it sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from livehub.core.model import Entry
from livehub.core.sse import encode_comments
from livehub.core.wsframes import encode_ws

if TYPE_CHECKING:
    from livehub.actors.ports import DirectSink


class Lagged(Exception):
    """The viewer fell behind and its queued frames were dropped; catch up from the store."""


class Resubscribe(Exception):
    """The actor went away (crash, retirement, shutdown); subscribe again from last seq."""


class Frame:
    """A contiguous run of stream entries (comments and moderation events) delivered
    together; each encoding is made once and shared by every subscriber."""

    __slots__ = ("_json", "_sse", "cache", "comments")

    def __init__(self, comments: list[Entry]) -> None:
        self.comments = comments
        self._sse: bytes | None = None
        self._json: list[str] | None = None
        self.cache: dict[str, bytes] = {}  # transports' framings of the SSE bytes

    @property
    def first(self) -> int:
        return self.comments[0].seq

    @property
    def last(self) -> int:
        return self.comments[-1].seq

    def sse(self) -> bytes:
        if self._sse is None:
            self._sse = encode_comments(self.comments)
        return self._sse

    def ws_messages(self) -> list[str]:
        """One WebSocket text message per entry (``wsframes.encode_ws``)."""
        if self._json is None:
            self._json = [encode_ws(c) for c in self.comments]
        return self._json


class Subscription:
    """A bounded frame queue between one actor (producer) and one viewer (consumer).

    ``position`` is the last seq the viewer has been given. While the viewer is idle
    and caught up (``direct_ready``), the actor writes a frame that continues exactly
    at ``position + 1`` straight to the viewer's ``direct`` sink instead of queueing
    it: no task switch per viewer per frame.
    """

    def __init__(self, max_frames: int, position: int = 0) -> None:
        self.position = position
        self.direct: DirectSink | None = None
        self.direct_ready = False
        self._frames: list[Frame] = []  # a list: a deque is ~600 bytes even when empty
        self._max_frames = max(1, max_frames)
        self._wakeup: trio.Event | None = None  # made when the viewer waits on it
        self._waiter: trio.CancelScope | None = None  # the viewer sleeping in its sink
        self._lagged = False
        self._closed = False
        self._cancelled = False
        self.lagged_count = 0

    # -- actor side (synchronous, never blocks) --
    def offer_direct(self, frame: Frame) -> bool:
        """Write ``frame`` straight to the viewer if it is idle, caught up and the
        socket takes it now; False: queue it with :meth:`push_nowait` instead."""
        sink = self.direct
        if (
            sink is None
            or not self.direct_ready
            or self._frames
            or self._lagged
            or self._cancelled
            or frame.first != self.position + 1
        ):
            return False
        if not sink.try_write_frame(frame):
            return False
        self.position = frame.last
        if sink.has_pending:  # the viewer's task finishes the write
            self.direct_ready = False
            self._wake()
        return True

    def offer_control_nowait(self, data: bytes) -> bool:
        """Write a control event (ping, viewer count: no seq) straight to an idle,
        caught-up viewer; False when it is busy or has no direct sink (it then gets
        its own pings)."""
        sink = self.direct
        if sink is None or not self.direct_ready or self._frames or self._lagged:
            return False
        if self._cancelled or not sink.try_write_control(data):
            return False
        if sink.has_pending:
            self.direct_ready = False
            self._wake()
        return True

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
        if self._waiter is not None:
            self._waiter.cancel()

    def push_nowait(self, frame: Frame) -> bool:
        """Queue ``frame``; returns False when it overflowed and the queue was dropped."""
        if self._closed or self._cancelled:
            return False
        if len(self._frames) >= self._max_frames:
            self._frames.clear()
            if not self._lagged:
                self._lagged = True
                self.lagged_count += 1
            self._wake()
            return False
        if not self._lagged:
            self._frames.append(frame)
        self._wake()
        return True

    def close(self) -> None:
        """The actor is gone: the viewer gets :class:`Resubscribe` once queued frames are read."""
        self._closed = True
        self._wake()

    # -- viewer side --
    def cancel(self) -> None:
        """The viewer left; the actor drops this subscription at its next look."""
        self._cancelled = True
        self._frames.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    async def receive_batch(self) -> list[Frame]:
        """Everything queued, waiting until there is something ([]: only a direct
        write's unfinished tail is waiting for the viewer's task).

        Raises:
            Lagged: frames were dropped; the flag is cleared, so frames pushed from now
                on are queued again (catch up from the store, then de-duplicate).
            Resubscribe: the actor closed this subscription and nothing is left.
        """
        while True:
            if self._lagged:
                self._lagged = False
                raise Lagged()
            if self._frames:
                frames, self._frames = self._frames, []
                return frames
            if self.direct is not None and self.direct.has_pending:
                return []  # nothing queued, but a direct write is left to finish
            if self._closed:
                raise Resubscribe()
            sink = self.direct
            if sink is not None and sink.can_wait_idle:
                # One task per viewer: sleep in the socket (noticing a client that
                # leaves) until the actor has something for us and cancels the wait.
                with trio.CancelScope() as scope:
                    self._waiter = scope
                    try:
                        await sink.wait_idle()
                    finally:
                        self._waiter = None
            else:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
