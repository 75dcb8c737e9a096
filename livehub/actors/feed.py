"""Feed: one viewer's gapless, duplicate-free sequence of frames, for any transport.

It subscribes to the video's actor, sends what the ring replays or reads from
Postgres what the ring no longer holds, then live frames. ``position`` is the last
seq this viewer has been given (or deliberately skipped, for a new viewer); every
frame it returns continues exactly at ``position + 1``. A lag (the viewer fell
behind and the actor dropped its queue) or an actor restart becomes a catch-up read
from Postgres from ``position``, then live frames again, de-duplicated by seq.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from livehub.actors.messages import Subscribed
from livehub.actors.ports import CommentStore, DirectSink
from livehub.actors.registry import Registry
from livehub.actors.subscriber import Frame, Lagged, Resubscribe, Subscription
from livehub.core.model import STREAM_PAGE
from livehub.core.recovery import resume_position

log = logging.getLogger("livehub.actors.feed")


class Feed:
    def __init__(
        self,
        registry: Registry,
        store: CommentStore,
        video_id: str,
        on_catchup: Callable[[str], None] | None = None,
    ) -> None:
        self._registry = registry
        self._store = store
        self.video_id = video_id
        self._on_catchup = on_catchup or (lambda reason: None)
        self._sub: Subscription | None = None
        self._position = 0  # until subscribed; then the subscription holds it
        self._direct: DirectSink | None = None
        self._gap: tuple[int, int | None] | None = None  # (after, until or None: to head)
        self._held: list[Frame] = []
        # a new viewer's snapshot of the current pin (event data JSON), sent at connect
        self.pinned_at_connect: str | None = None

    async def start(self, after: int | None, backlog: int) -> None:
        """Subscribe, from ``after`` (a resume) or as a new viewer.

        A resume past what this node delivered is checked against the video's head
        in Postgres (another node may simply be ahead): past the head, the viewer
        continues from the head (:func:`recovery.resume_position`), counted as a
        ``past_head`` catch-up and logged.

        Raises:
            Unavailable: the actor cannot start (StoreUnavailable) or is restarting
                (VideoRestarting), or the head could not be read
                (then close the feed).
        """
        s = await self._registry.subscribe(self.video_id, after, backlog)
        if after is None:
            self._position = s.replay[0].seq - 1 if s.replay else s.last_delivered
            self.pinned_at_connect = s.pinned
        else:
            self._position = after
        self._take(s)
        if after is not None and after > s.last_delivered:
            head = await self._store.head(self.video_id)
            position = resume_position(after, head)
            if position != after:
                log.warning(
                    "video %s: a viewer resumed after seq %d, past the newest (%d);"
                    " continuing from there",
                    self.video_id,
                    after,
                    head,
                )
                self._on_catchup("past_head")
                self.position = position

    @property
    def position(self) -> int:
        """The last seq this viewer has been given (the actor may advance it by
        writing a frame directly)."""
        return self._sub.position if self._sub is not None else self._position

    @position.setter
    def position(self, seq: int) -> None:
        if self._sub is not None:
            self._sub.position = seq
        self._position = seq

    def attach_direct(self, sink: DirectSink) -> None:
        """Let the actor write live frames straight to ``sink`` while we are idle."""
        self._direct = sink
        if self._sub is not None:
            self._sub.direct = sink

    def set_direct_ready(self, ready: bool) -> None:
        if self._sub is not None:
            self._sub.direct_ready = ready

    def _take(self, s: Subscribed) -> None:
        position = self.position
        # A resubscription happens while the viewer waits in next_batch, i.e. ready
        # for direct writes: the new subscription must say so too.
        ready = self._sub.direct_ready if self._sub is not None else False
        self._sub = s.sub
        self._sub.position = position
        self._sub.direct = self._direct
        self._sub.direct_ready = ready
        if s.store_gap is not None:
            self._gap = s.store_gap
            self._on_catchup("resume")
        if s.replay:
            self._held = [Frame(s.replay), *self._held]

    def close(self) -> None:
        if self._sub is not None:
            self._position = self._sub.position
            self._sub.direct = None
            self._registry.unsubscribe_nowait(self.video_id, self._sub)
            self._sub = None

    async def next_batch(self) -> list[Frame]:
        """The next frames, in seq order, continuing at position + 1 ([]: nothing but
        the unfinished tail of a direct write, which the caller writes first).

        Raises:
            StoreUnavailable: a catch-up read failed; the viewer should reconnect.
        """
        while True:
            if self._gap is not None:
                after, until = self._gap
                after = max(after, self.position)
                rows = []
                if until is None or after < until:
                    # Shielded (the store bounds it by its query timeout): a caller's
                    # short deadline (a ping, a viewer count) must not cancel every
                    # attempt of a slow catch-up read, or it would never finish.
                    with trio.CancelScope(shield=True):
                        rows = await self._store.read_stream(
                            self.video_id, after, until, STREAM_PAGE
                        )
                if len(rows) < STREAM_PAGE:
                    self._gap = None
                if rows:
                    out = self._accept([Frame(rows)])
                    if out:
                        return out
                continue
            if self._held:
                held, self._held = self._held, []
                out = self._accept(held)
                if out:
                    return out
                continue
            try:
                frames = await self._sub.receive_batch()
            except Lagged:
                self._on_catchup("lagged")
                self._gap = (self.position, None)
                continue
            except Resubscribe:
                self._position = self._sub.position
                self._sub.direct = None
                s = await self._registry.subscribe(self.video_id, self._position, 0)
                self._take(s)
                continue
            if not frames:
                return []  # only a direct write's tail to finish
            out = self._accept(frames)
            if out:
                return out

    def _accept(self, frames: list[Frame]) -> list[Frame]:
        """Drop what the viewer has, trim overlaps, and hold back anything past a hole."""
        out: list[Frame] = []
        for i, frame in enumerate(frames):
            if frame.last <= self.position:
                continue
            if frame.first > self.position + 1:
                # A hole (should not happen; be safe): read it from the store first.
                self._gap = (self.position, frame.first - 1)
                self._held = frames[i:] + self._held
                break
            if frame.first <= self.position:
                frame = Frame(frame.comments[self.position + 1 - frame.first :])
            out.append(frame)
            self.position = frame.last
        return out
