"""The registry: get-or-spawn one VideoActor per live video, in one nursery.

It restarts an actor that crashes (its viewers resubscribe gaplessly), retires one
that has been idle with no viewers, routes bus wake-ups, and runs the periodic
counter check that catches a wake-up that never came.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import trio

from livehub.actors.merger import InsertMerger
from livehub.actors.messages import (
    Message,
    Post,
    Resync,
    Subscribe,
    Subscribed,
    Unsubscribe,
)
from livehub.actors.ports import Bus, CommentStore
from livehub.actors.shardmerger import ShardedMerger
from livehub.actors.subscriber import Subscription
from livehub.actors.video import VideoActor
from livehub.config import Settings
from livehub.core.errors import NotStarted, Overloaded, StoreUnavailable, VideoRestarting
from livehub.core.model import Comment, Draft
from livehub.core.wakeup import WakeUp

log = logging.getLogger("livehub.registry")

MAX_QUICK_RESTARTS = 5  # an actor crashing more often than this is failing, not flaky
RATE_PERIOD_SECONDS = 0.5  # write-rate sampling period for adaptive coalescing


class _Handle:
    def __init__(self, video_id: str, inbox_size: int, post_queue_size: int) -> None:
        self.video_id = video_id
        self.inbox_send, self.inbox = trio.open_memory_channel[Message](inbox_size)
        self.posts_send, self.posts = trio.open_memory_channel[Post](post_queue_size)
        self.actor: VideoActor | None = None
        self.restarts = 0

    def quiet(self) -> bool:
        inbox = self.inbox_send.statistics()
        posts = self.posts_send.statistics()
        return (
            inbox.current_buffer_used == 0
            and inbox.tasks_waiting_send == 0
            and posts.current_buffer_used == 0
            and posts.tasks_waiting_send == 0
            and posts.tasks_waiting_receive > 0  # the batcher waits: nothing in flight
        )


@dataclass(frozen=True)
class RegistryStatistics:
    actors: int
    viewers: int  # subscriptions its actors hold (the sum of their subscribers)
    restarts: int
    merged_transactions: int  # insert transactions that the node-wide merger ran
    lagged_drops: int  # times a live actor dropped a slow viewer's queue (it then catches up)
    write_rate: float  # frames x viewers per second, smoothed (drives coalescing)


class Registry:
    """The actors of one node.

    ``streams`` is the node's count of open viewer streams (the gate owns it; it
    drives write coalescing), ``viewer_total`` a video's viewer count over every node
    (``livehub.db.viewers``), ``on_delivered`` sees every delivered batch (metrics).
    """

    def __init__(
        self,
        store: CommentStore,
        settings: Settings,
        bus: Bus,
        *,
        streams: Callable[[], int] = lambda: 0,
        viewer_total: Callable[[str], int] | None = None,
        on_delivered: Callable[[str, list[Comment], int], None] | None = None,
        merger: ShardedMerger | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._bus = bus
        self._streams = streams
        self._viewer_total = viewer_total
        self._on_delivered = on_delivered
        self._handles: dict[str, _Handle] = {}
        self._restarts = 0
        self._nursery: trio.Nursery | None = None
        self._writes = 0  # frames x viewers since the last rate sample
        self._write_rate = 0.0
        # max_batch 1 is the unbatched baseline: no merging across videos either.
        # ``merger``: the node's own (one per shard: actors/shardmerger.py).
        merge = settings.max_batch > 1
        self._merger = merger or InsertMerger(
            store, merge, 4 if merge else settings.max_db_connections
        )

    # -- lifecycle --
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Own every actor; check live videos' counters every resync interval."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._merger.run)
            nursery.start_soon(self._measure_write_rate)
            task_status.started(self)
            while True:
                await trio.sleep(self._settings.resync_interval_seconds)
                await self._check_heads()

    async def _check_heads(self) -> None:
        videos = list(self._handles)
        if not videos:
            return
        try:
            heads = await self._store.heads(videos)
        except Exception:  # StoreUnavailable, or e.g. a standby refusing: try next time
            log.warning("counter check failed", exc_info=True)
            return
        for video_id, head in heads.items():
            handle = self._handles.get(video_id)
            actor = handle.actor if handle else None
            if actor is not None and head > actor.statistics().last_delivered:
                self._send_nowait(handle, Resync(head))

    def resync_all(self) -> None:
        """The bus reconnected: wake-ups may have been lost; every actor reads the store."""
        for handle in list(self._handles.values()):
            self._send_nowait(handle, Resync())

    def _get(self, video_id: str) -> _Handle:
        handle = self._handles.get(video_id)
        if handle is None:
            if self._nursery is None:
                raise NotStarted("the server is not started")
            handle = _Handle(video_id, self._settings.inbox_size, self._settings.post_queue_size)
            self._handles[video_id] = handle
            self._nursery.start_soon(self._supervise, handle, name=f"actor:{video_id}")
        return handle

    async def _supervise(self, handle: _Handle) -> None:
        video_id = handle.video_id
        try:
            await self._bus.listen(video_id)
            while True:
                actor = VideoActor(
                    video_id,
                    self._store,
                    self._merger,
                    self._settings,
                    handle.inbox,
                    handle.inbox_send,
                    handle.posts,
                    self,
                )
                handle.actor = actor
                try:
                    await actor.run()
                    return  # retired
                except StoreUnavailable as exc:
                    log.warning("video %s: actor cannot start: %s", video_id, exc.message)
                    return
                except Exception:
                    handle.restarts += 1
                    self._restarts += 1
                    log.exception("video %s: actor crashed; restarting", video_id)
                    if handle.restarts > MAX_QUICK_RESTARTS:
                        return
                    await trio.sleep(0.01 * handle.restarts)
        finally:
            if self._handles.get(video_id) is handle:
                del self._handles[video_id]
            self._bus.unlisten(video_id)
            _fail_queued(handle)

    # -- NodeHooks for actors --
    def coalesce_interval(self) -> float:
        """How long an actor holds new comments after its last write (adaptive).

        None while this node writes under half its budget: every comment goes out at
        once. Above that, long enough that even if every video wrote that often, the
        node's writes/s would stay within budget: viewers / budget, capped so the
        added latency stays well under the 200 ms bar.
        """
        budget = self._settings.write_budget_per_second
        if self._write_rate < budget / 2:
            return 0.0
        viewers = self._streams()
        if viewers == 0:
            return 0.0
        return min(self._settings.coalesce_max_seconds, viewers / budget)

    async def _measure_write_rate(self) -> NoReturn:
        """Writes/s of this node (frames x viewers), smoothed over about a second."""
        while True:
            await trio.sleep(RATE_PERIOD_SECONDS)
            sample = self._writes / RATE_PERIOD_SECONDS
            self._writes = 0
            self._write_rate = 0.5 * self._write_rate + 0.5 * sample

    def viewer_total(self, video_id: str) -> int | None:
        return None if self._viewer_total is None else self._viewer_total(video_id)

    def committed(self, video_id: str, comments: list[Comment]) -> None:
        self._bus.committed(video_id, comments)

    def delivered(self, video_id: str, comments: list[Comment], viewers: int) -> None:
        self._writes += viewers
        if self._on_delivered is not None:
            self._on_delivered(video_id, comments, viewers)

    def may_retire(self, video_id: str, actor: VideoActor) -> bool:
        handle = self._handles.get(video_id)
        if handle is None or handle.actor is not actor or not handle.quiet():
            return False
        del self._handles[video_id]
        return True

    # -- the API handlers use --
    async def post(self, video_id: str, draft: Draft) -> Comment:
        """Store ``draft`` through the video's batcher; returns it after commit.

        Raises:
            StoreUnavailable: Postgres failed or the actor could not start.
            Overloaded: the video's post queue stayed full.
        """
        post = Post(draft)
        handle = self._get(video_id)
        try:
            try:
                handle.posts_send.send_nowait(post)
            except trio.WouldBlock:
                # Backpressure, bounded: a send cancelled by the timeout queued nothing.
                with trio.fail_after(self._settings.db_command_timeout_seconds):
                    await handle.posts_send.send(post)
        except trio.TooSlowError:
            raise Overloaded("too many posts queued for this video") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise VideoRestarting("the video is restarting; retry") from None
        return await post.reply.wait()

    async def subscribe(self, video_id: str, after: int | None, backlog: int) -> Subscribed:
        msg = Subscribe(after, backlog)
        handle = self._get(video_id)
        try:
            await handle.inbox_send.send(msg)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise VideoRestarting("the video is restarting; retry") from None
        try:
            return await msg.reply.wait()
        except BaseException:
            # Cancelled while the actor answers (client gone, a drain, a deadline):
            # make sure no subscription is left behind for nobody.
            msg.reply.abandoned = True
            answered = msg.reply.value_nowait()
            if answered is not None:
                self.unsubscribe_nowait(video_id, answered.sub)
            raise

    def unsubscribe_nowait(self, video_id: str, sub: Subscription) -> None:
        sub.cancel()
        handle = self._handles.get(video_id)
        if handle is not None:
            self._send_nowait(handle, Unsubscribe(sub))

    def notify_nowait(self, wake: WakeUp) -> None:
        """Route a wake-up (the bus, or a moderation action on this node); dropped
        when nobody here watches the video."""
        handle = self._handles.get(wake.video_id)
        if handle is not None:
            self._send_nowait(handle, wake)

    def _send_nowait(self, handle: _Handle, msg: Message) -> None:
        try:
            handle.inbox_send.send_nowait(msg)
        except trio.WouldBlock:
            if handle.actor is None:
                return
            if isinstance(msg, Unsubscribe):
                # A mass disconnect overflows the inbox: the actor sweeps out every
                # cancelled subscription after its next message instead.
                handle.actor.request_prune_nowait()
            else:
                handle.actor.request_resync_nowait()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def actor(self, video_id: str) -> VideoActor | None:
        handle = self._handles.get(video_id)
        return handle.actor if handle else None

    def statistics(self) -> RegistryStatistics:
        actors = [h.actor.statistics() for h in self._handles.values() if h.actor]
        return RegistryStatistics(
            len(self._handles),
            sum(a.subscribers for a in actors),
            self._restarts,
            self._merger.transactions,
            sum(a.lagged_drops for a in actors),
            self._write_rate,
        )


def _fail_queued(handle: _Handle) -> None:
    """Answer whatever still waits in a dead actor's queues, so no request hangs."""
    error = VideoRestarting("the video's actor stopped; retry")
    for channel in (handle.posts, handle.inbox):
        while True:
            try:
                msg = channel.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            reply = getattr(msg, "reply", None)
            if reply is not None:
                reply.fail(error)
    handle.posts_send.close()
    handle.inbox_send.close()
