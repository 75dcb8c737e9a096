"""VideoActor: the single owner of one video's subscribers, ring and delivery position.

Everything reaches it through its inbox. It delivers only the next contiguous seq:
a batch that starts past ``last_delivered + 1`` makes it read the missing range from
Postgres first; a batch at or below ``last_delivered`` is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from livehub.actors.batcher import serve_batcher
from livehub.actors.messages import (
    Committed,
    Message,
    Post,
    Resync,
    Subscribe,
    Subscribed,
    Unsubscribe,
)
from livehub.actors.ports import CommentStore, Inserter, NodeHooks
from livehub.actors.subscriber import Frame, Subscription
from livehub.config import Settings
from livehub.core.errors import StoreUnavailable, VideoRestarting
from livehub.core.model import STREAM_PAGE, Entry, Event
from livehub.core.recovery import plan_resume
from livehub.core.ring import Ring
from livehub.core.sse import PING, viewers_event
from livehub.core.wakeup import WakeUp

log = logging.getLogger("livehub.actor")

FLUSH_SLICE = 500  # viewers written between checkpoints of one flush
EXTRAS_SECONDS = 1.0  # how often an actor looks at pings and its video's viewer count


@dataclass(frozen=True)
class ActorStatistics:
    video_id: str
    subscribers: int
    last_delivered: int
    ring_size: int
    lagged_drops: int
    gap_reads: int
    direct_writes: int  # frames written to a viewer's socket by the actor itself


class VideoActor:
    def __init__(
        self,
        video_id: str,
        store: CommentStore,
        inserter: Inserter,
        settings: Settings,
        inbox: trio.MemoryReceiveChannel[Message],
        inbox_send: trio.MemorySendChannel[Message],
        posts: trio.MemoryReceiveChannel[Post],
        hooks: NodeHooks,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.video_id = video_id
        self._store = store
        self._inserter = inserter
        self._settings = settings
        self._inbox = inbox
        self._inbox_send = inbox_send
        self._posts = posts
        self._hooks = hooks
        self._clock = clock
        self._subs: set[Subscription] = set()
        self._ring = Ring(settings.ring_size)
        self._last_delivered = 0
        self._pending: list[Entry] = []  # delivered to the ring, not yet flushed
        # the current pin (its event data JSON) for new viewers; None: nothing pinned
        self._pin_seq: int | None = None
        self._pin_data: str | None = None
        self._last_flush = -1e9
        self._last_activity = 0.0
        self._lagged_drops = 0
        self._gap_reads = 0
        self._direct_writes = 0
        self._needs_resync = False
        self._needs_prune = False  # an Unsubscribe was dropped (inbox full)
        self._viewers_sent: int | None = None  # the viewer count the subscribers last got
        self._next_extras = 0.0  # next look at pings and the viewer count

    def statistics(self) -> ActorStatistics:
        return ActorStatistics(
            self.video_id,
            len(self._subs),
            self._last_delivered,
            len(self._ring),
            self._lagged_drops,
            self._gap_reads,
            self._direct_writes,
        )

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load the recent past, then serve the inbox until retired or cancelled.

        Error handling: a store failure at start fails the queued requests and
        returns; any other exception propagates to the registry, which restarts
        the actor. Either way every subscription is closed, so its viewer
        re-subscribes from the last seq it sent and misses nothing.
        """
        try:
            recent = await self._store.stream_tail(self.video_id, self._settings.ring_size)
            self._ring.extend(recent)
            pin = await self._store.pinned(self.video_id)
            if pin is not None:
                self._pin_seq, self._pin_data = pin
            self._last_delivered = recent[-1].seq if recent else 0
            self._last_activity = self._clock()
            task_status.started(self)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    serve_batcher,
                    self.video_id,
                    self._inserter,
                    self._posts,
                    self._inbox_send,
                    self._settings.max_batch,
                    self._hooks.committed,
                )
                await self._serve_inbox()
                nursery.cancel_scope.cancel()
        finally:
            for sub in self._subs:
                sub.close()
            self._subs.clear()

    async def _serve_inbox(self) -> None:
        idle_seconds = self._settings.actor_idle_seconds
        while True:
            if self._pending:
                deadline = self._last_flush + self._hooks.coalesce_interval()
            else:
                deadline = self._last_activity + idle_seconds
            if self._subs:
                if self._clock() >= self._next_extras:
                    self._send_extras()
                deadline = min(deadline, self._next_extras)
            msg = None
            with trio.move_on_at(deadline):
                msg = await self._inbox.receive()
            now = self._clock()
            if msg is not None:
                self._last_activity = now
                await self._handle(msg)
                if self._needs_prune:
                    self._needs_prune = False
                    self._prune_cancelled()
                if self._needs_resync:
                    self._needs_resync = False
                    await self._advance_from_store(None)
            if self._pending and now >= self._last_flush + self._hooks.coalesce_interval():
                await self._flush(now)
            elif msg is None and not self._pending and now >= self._last_activity + idle_seconds:
                self._prune_cancelled()
                if not self._subs and self._hooks.may_retire(self.video_id, self):
                    return
                # Not quiet yet (a post in flight, a message just queued): look again
                # after another idle period, rather than spinning on a past deadline.
                self._last_activity = now

    async def _handle(self, msg: Message) -> None:
        if isinstance(msg, Committed):
            await self._advance(msg.comments[0].seq, msg.comments[-1].seq, msg.comments)
        elif isinstance(msg, WakeUp):
            await self._advance(msg.first, msg.last, msg.comments)
        elif isinstance(msg, Subscribe):
            await self._subscribe(msg)
        elif isinstance(msg, Unsubscribe):
            self._subs.discard(msg.sub)
        elif isinstance(msg, Resync):
            if msg.head is None or msg.head > self._last_delivered:
                await self._advance_from_store(msg.head)
        else:  # pragma: no cover - a programming error, let the registry restart us
            raise TypeError(f"unknown message {msg!r}")

    async def _subscribe(self, msg: Subscribe) -> None:
        # Flush first, so the replay plan and the live frames meet exactly.
        if self._pending:
            try:
                await self._flush(self._clock())
            except BaseException:
                msg.reply.fail(VideoRestarting("the video's actor stopped; retry"))
                raise
        if msg.reply.abandoned:
            return  # the viewer left while waiting: subscribe nobody
        plan = plan_resume(msg.after, msg.backlog, self._last_delivered, self._ring)
        sub = Subscription(self._settings.subscriber_queue_frames)
        self._subs.add(sub)
        msg.reply.set(
            Subscribed(sub, plan.replay, plan.store_gap, self._last_delivered, self._pin_data)
        )

    async def _advance(self, first: int, last: int, comments: list[Entry] | None) -> None:
        """Deliver seqs up to ``last``, reading from the store what we lack."""
        if last <= self._last_delivered:
            return
        if comments and first <= self._last_delivered + 1:
            skip = self._last_delivered + 1 - first
            self._deliver(comments[skip:])
        else:
            await self._advance_from_store(last)

    async def _advance_from_store(self, until: int | None) -> None:
        self._gap_reads += 1
        try:
            while until is None or self._last_delivered < until:
                rows = await self._store.read_stream(
                    self.video_id, self._last_delivered, until, limit=STREAM_PAGE
                )
                if not rows:
                    break
                if not self._deliver(rows):
                    break
        except StoreUnavailable as exc:
            # The periodic resync (or the next wake-up) retries from last_delivered.
            log.warning("video %s: gap read failed: %s", self.video_id, exc.message)

    def _deliver(self, comments: list[Entry]) -> bool:
        """Append the contiguous prefix of ``comments``; False if none fitted."""
        expected = self._last_delivered + 1
        n = 0
        for c in comments:
            if c.seq != expected + n:
                break
            n += 1
        if n == 0:
            return False
        fresh = comments[:n]
        self._ring.extend(fresh)
        self._pending.extend(fresh)
        self._last_delivered = fresh[-1].seq
        for e in fresh:
            if type(e) is Event:
                self._apply_event(e)
        return True

    def _apply_event(self, e: Event) -> None:
        """What a moderation event changes in what this actor hands out later: a
        deleted comment replays as a tombstone (so does a pin that carried it), and
        new viewers get the current pin."""
        if e.kind == "deleted" and e.target is not None:
            self._ring.redact(e.target)
            if e.target == self._pin_seq:
                self._pin_seq = self._pin_data = None
        elif e.kind == "pinned":
            self._pin_seq = e.target
            self._pin_data = e.data if e.target is not None else None

    async def _flush(self, now: float) -> None:
        """Hand the pending comments to every subscriber as one shared frame.

        Only this actor changes ``_subs``, so iterating it across the checkpoints
        (every FLUSH_SLICE viewers, letting posts and other videos run during a flush
        to 10,000 viewers) is safe.
        """
        frame = Frame(self._pending)
        self._pending = []
        self._last_flush = now
        gone = []
        for i, sub in enumerate(self._subs):
            if i and i % FLUSH_SLICE == 0:
                await trio.lowlevel.checkpoint()
            if sub.offer_direct(frame):
                self._direct_writes += 1
                continue
            if not sub.push_nowait(frame):
                if sub.cancelled:
                    gone.append(sub)
                else:
                    self._lagged_drops += 1
        for sub in gone:
            self._subs.discard(sub)
        self._hooks.delivered(self.video_id, frame.comments, len(self._subs))

    def _prune_cancelled(self) -> None:
        """Drop subscriptions whose viewers left (their Unsubscribe may have been lost)."""
        for sub in [sub for sub in self._subs if sub.cancelled]:
            self._subs.discard(sub)

    def _send_extras(self) -> None:
        """Pings and viewer-count events for idle viewers, encoded once and written by
        the actor, so 10,000 viewers do not each wake on their own timers."""
        now = self._clock()
        self._next_extras = now + min(EXTRAS_SECONDS, self._settings.heartbeat_seconds)
        total = self._hooks.viewer_total(self.video_id)
        if total is not None and total != self._viewers_sent:
            self._viewers_sent = total
            self._broadcast_control(viewers_event(total))
        if now - self._last_flush >= self._settings.heartbeat_seconds:
            self._last_flush = now
            self._broadcast_control(PING)

    def _broadcast_control(self, data: bytes) -> None:
        for sub in self._subs:
            sub.offer_control_nowait(data)

    def request_prune_nowait(self) -> None:
        """An Unsubscribe was dropped (inbox full): sweep after the next message."""
        self._needs_prune = True

    def request_resync_nowait(self) -> None:
        """A wake-up for this video was dropped (inbox full): resync after the next message."""
        self._needs_resync = True
