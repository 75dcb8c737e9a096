"""Gate: a node's admission control: stream slots, posts in flight, and draining.

- Streams (SSE and WebSocket) take a slot with :meth:`Gate.open_stream`; past
  ``max_streams`` a new one is refused with :class:`Overloaded` (503 + Retry-After),
  so a flood of viewers cannot take the node down, and past ``max_streams_per_client``
  for one client (``livehub.core.clientaddr``) with :class:`TooManyStreams` (429 +
  Retry-After), so one client cannot take every slot. The gate also counts streams
  per video: that is this node's viewer count of each video.
- Posts run inside :meth:`Gate.post`, so a drain can wait for the ones in flight.
- :meth:`Gate.drain` (graceful shutdown): refuse new streams and posts with
  :class:`ShuttingDown`, wake every stream waiting for comments with
  :class:`Draining` (it ends with a retry hint, and the viewer reconnects elsewhere
  with its Last-Event-ID), and wait, bounded, until posts and streams are done.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import trio

from livehub.core.errors import Overloaded, ShuttingDown, TooManyStreams

T = TypeVar("T")


class Draining(Exception):
    """The node is shutting down: end this stream with a reconnect hint."""


@dataclass(frozen=True)
class GateStatistics:
    streams: int
    posts_in_flight: int
    draining: bool
    refused_full: int
    refused_draining: int
    refused_client: int  # 429s: a client over max_streams_per_client


class Gate:
    def __init__(
        self, max_streams: int, retry_after_seconds: float, max_streams_per_client: int = 0
    ) -> None:
        self.max_streams = max_streams
        self.max_streams_per_client = max_streams_per_client  # 0: no cap
        self.retry_after_seconds = retry_after_seconds
        self._streams = 0
        self._per_video: Counter[str] = Counter()
        self._per_client: Counter[str] = Counter()
        self._refused_client = 0
        self._posts = 0
        self._draining = False
        self._waiting: set[trio.CancelScope] = set()
        self._changed = trio.Event()
        self._refused_full = 0
        self._refused_draining = 0

    @property
    def draining(self) -> bool:
        return self._draining

    def check_open(self) -> None:
        """Raises:
        ShuttingDown: the node is draining (503; retry on another node)."""
        if self._draining:
            self._refused_draining += 1
            raise ShuttingDown("this node is shutting down; retry", self.retry_after_seconds)

    def open_stream(self, video_id: str, client: str | None = None) -> StreamSlot:
        """Take a stream slot for ``video_id`` on behalf of ``client`` (its address,
        :func:`livehub.core.clientaddr.from_scope`; None: not counted per client); close
        the slot when the stream ends.

        Raises:
            ShuttingDown: the node is draining.
            Overloaded: ``max_streams`` are open.
            TooManyStreams: ``client`` already holds ``max_streams_per_client``.
        """
        self.check_open()
        if self._streams >= self.max_streams:
            self._refused_full += 1
            raise Overloaded("this node has too many open streams", self.retry_after_seconds)
        cap = self.max_streams_per_client
        if client is not None and cap and self._per_client[client] >= cap:
            self._refused_client += 1
            raise TooManyStreams(
                f"too many open streams from this client (at most {cap}); close some",
                self.retry_after_seconds,
            )
        self._streams += 1
        self._per_video[video_id] += 1
        if client is not None:
            self._per_client[client] += 1
        return StreamSlot(self, video_id, client)

    def _release(self, video_id: str, client: str | None) -> None:
        self._streams -= 1
        self._per_video[video_id] -= 1
        if self._per_video[video_id] <= 0:
            del self._per_video[video_id]
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]
        self._wake()

    @contextlib.contextmanager
    def post(self) -> Iterator[None]:
        """Count a post in flight (from acceptance until its answer is written).

        Raises:
            ShuttingDown: the node is draining; nothing was stored.
        """
        self.check_open()
        self._posts += 1
        try:
            yield
        finally:
            self._posts -= 1
            self._wake()

    async def wait(self, fn: Callable[[], Awaitable[T]], deadline: float) -> T | None:
        """``await fn()``, or None at ``deadline`` (``trio.current_time()`` clock).

        Raises:
            Draining: the node started draining (now or while waiting).
        """
        if self._draining:
            raise Draining()
        with trio.move_on_at(deadline) as scope:
            self._waiting.add(scope)
            try:
                return await fn()
            finally:
                self._waiting.discard(scope)
        if self._draining:
            raise Draining()
        return None

    async def drain(self, grace_seconds: float) -> bool:
        """Start refusing, end the streams, wait for posts and streams to finish.

        Returns True if everything finished within ``grace_seconds``.
        """
        self._draining = True
        for scope in list(self._waiting):
            scope.cancel()
        with trio.move_on_after(grace_seconds):
            await self.wait_posts_done()
            while self._streams:
                await self._wait_change()
            return True
        return False

    async def wait_posts_done(self) -> None:
        while self._posts:
            await self._wait_change()

    def streams_open(self) -> int:
        """Open streams on this node: the one count of them (the rest is derived)."""
        return self._streams

    def viewers(self) -> dict[str, int]:
        """Open streams per video on this node (a copy)."""
        return dict(self._per_video)

    def viewers_of(self, video_id: str) -> int:
        return self._per_video.get(video_id, 0)

    def statistics(self) -> GateStatistics:
        return GateStatistics(
            self._streams,
            self._posts,
            self._draining,
            self._refused_full,
            self._refused_draining,
            self._refused_client,
        )

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()


class StreamSlot:
    """One open stream's place in the gate; :meth:`close` is idempotent."""

    __slots__ = ("_gate", "client", "video_id")

    def __init__(self, gate: Gate, video_id: str, client: str | None = None) -> None:
        self._gate: Gate | None = gate
        self.video_id = video_id
        self.client = client

    def close(self) -> None:
        if self._gate is not None:
            gate, self._gate = self._gate, None
            gate._release(self.video_id, self.client)
