"""What the rest of a node sees of its shards: one store, one bus, one moderation
store and one set of viewer counts, each routing a video to its shard's own.

Everything about a video lives on its shard (``livehub.core.shards.shard_of``) and
nothing crosses shards, so every call names one video and goes to one shard; the
few that take many videos (the counter check, moderation reads) split them by shard
and ask each shard on its own, so a shard that is down fails only its own videos.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import trio

from livehub.core.errors import StoreUnavailable
from livehub.core.model import Comment, Draft, Entry
from livehub.core.shards import shard_of
from livehub.db.bus import BusStatistics, PgBus, WakeUpReceiver
from livehub.db.modstore import PgModerationStore
from livehub.db.shards import Shard
from livehub.db.store import PgCommentStore
from livehub.db.viewers import ViewerCounts, ViewerCountStatistics

log = logging.getLogger("livehub.db.routing")


class Router:
    """video id -> shard index, for ``count`` shards."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, video_id: str) -> int:
        return 0 if self.count == 1 else shard_of(video_id, self.count)

    def split(self, video_ids: Sequence[str]) -> dict[int, list[str]]:
        """The videos grouped by shard (only shards that hold some)."""
        out: dict[int, list[str]] = {}
        for v in video_ids:
            out.setdefault(self(v), []).append(v)
        return out


async def _per_shard(parts: dict[int, list[str]], ask) -> dict[int, object]:
    """``ask(shard, videos)`` for each shard at once; a shard that fails is absent."""
    answers: dict[int, object] = {}

    async def one(index: int, videos: list[str]) -> None:
        try:
            answers[index] = await ask(index, videos)
        except Exception as exc:  # StoreUnavailable, a standby refusing: that shard only
            log.warning("shard %d did not answer: %r", index, exc)

    async with trio.open_nursery() as nursery:
        for index, videos in parts.items():
            nursery.start_soon(one, index, videos)
    return answers


class ShardedCommentStore:
    """``PgCommentStore``'s API over every shard."""

    def __init__(self, stores: Sequence[PgCommentStore], route: Router) -> None:
        self.shards = list(stores)
        self._route = route

    def of(self, video_id: str) -> PgCommentStore:
        return self.shards[self._route(video_id)]

    async def insert(self, video_id: str, drafts: Sequence[Draft]) -> list[Comment]:
        return await self.of(video_id).insert(video_id, drafts)

    async def insert_many(
        self, batches: Sequence[tuple[str, Sequence[Draft]]]
    ) -> dict[str, list[Comment]]:
        """One transaction per shard (tests; the node's merger is per shard already)."""
        by_shard: dict[int, list[tuple[str, Sequence[Draft]]]] = {}
        for video_id, drafts in batches:
            by_shard.setdefault(self._route(video_id), []).append((video_id, drafts))
        out: dict[str, list[Comment]] = {}
        for index, part in by_shard.items():
            out.update(await self.shards[index].insert_many(part))
        return out

    async def history(self, video_id: str, before: int | None, limit: int) -> list[Comment]:
        return await self.of(video_id).history(video_id, before, limit)

    async def read_range(
        self, video_id: str, after: int, until: int | None = None, limit: int = 1000
    ) -> list[Comment]:
        return await self.of(video_id).read_range(video_id, after, until, limit)

    async def read_stream(
        self, video_id: str, after: int, until: int | None = None, limit: int = 1000
    ) -> list[Entry]:
        return await self.of(video_id).read_stream(video_id, after, until, limit)

    async def stream_tail(self, video_id: str, limit: int) -> list[Entry]:
        return await self.of(video_id).stream_tail(video_id, limit)

    async def pinned_comment(self, video_id: str) -> Comment | None:
        return await self.of(video_id).pinned_comment(video_id)

    async def pinned(self, video_id: str) -> tuple[int, str] | None:
        return await self.of(video_id).pinned(video_id)

    async def head(self, video_id: str) -> int:
        return await self.of(video_id).head(video_id)

    async def heads(self, video_ids: Sequence[str]) -> dict[str, int]:
        """Every answering shard's heads; a shard that is down leaves its videos out.

        Raises:
            StoreUnavailable: no shard holding one of these videos answered.
        """
        parts = self._route.split(video_ids)
        if len(parts) == 1:
            ((index, videos),) = parts.items()
            return await self.shards[index].heads(videos)
        answers = await _per_shard(parts, lambda i, vs: self.shards[i].heads(vs))
        if parts and not answers:
            raise StoreUnavailable("no shard answered")
        out: dict[str, int] = {}
        for heads in answers.values():
            out.update(heads)
        return out

    async def ping(self) -> None:
        """Raises StoreUnavailable unless every shard answers."""
        for store in self.shards:
            await store.ping()


class ShardedModerationStore:
    """``PgModerationStore``'s API for the HTTP handlers, over every shard."""

    def __init__(self, stores: Sequence[PgModerationStore], route: Router) -> None:
        self.shards = list(stores)
        self._route = route

    def of(self, video_id: str) -> PgModerationStore:
        return self.shards[self._route(video_id)]

    async def stored_settings(self, video_ids: Sequence[str]):
        out: dict = {}
        for index, videos in self._route.split(video_ids).items():
            out.update(await self.shards[index].stored_settings(videos))
        return out

    async def active_bans(self, video_ids: Sequence[str]):
        out: dict = {}
        for index, videos in self._route.split(video_ids).items():
            out.update(await self.shards[index].active_bans(videos))
        return out

    async def author(self, video_id: str, seq: int):
        return await self.of(video_id).author(video_id, seq)

    async def delete(self, video_id: str, seq: int, actor: str):
        return await self.of(video_id).delete(video_id, seq, actor)

    async def ban(self, video_id: str, user_id: str, seconds, actor: str, delete: bool):
        return await self.of(video_id).ban(video_id, user_id, seconds, actor, delete)

    async def unban(self, video_id: str, user_id: str, actor: str):
        return await self.of(video_id).unban(video_id, user_id, actor)

    async def bans(self, video_id: str, limit: int = 1000):
        return await self.of(video_id).bans(video_id, limit)

    async def pin(self, video_id: str, seq: int | None, actor: str):
        return await self.of(video_id).pin(video_id, seq, actor)

    async def update_settings(self, video_id: str, changes, actor: str, effective):
        return await self.of(video_id).update_settings(video_id, changes, actor, effective)

    async def log_page(self, video_id: str, before: int | None, limit: int):
        return await self.of(video_id).log_page(video_id, before, limit)


class ShardedBus:
    """The registry's bus: each video's LISTEN and wake-ups go through its shard's
    ``PgBus`` (one LISTEN connection per shard); all of them share the node id."""

    def __init__(self, buses: Sequence[PgBus], route: Router) -> None:
        self.shards = list(buses)
        self._route = route
        self.node_id = self.shards[0].node_id

    async def listen(self, video_id: str) -> None:
        await self.shards[self._route(video_id)].listen(video_id)

    def unlisten(self, video_id: str) -> None:
        self.shards[self._route(video_id)].unlisten(video_id)

    def committed(self, video_id: str, comments: list[Comment]) -> None:
        self.shards[self._route(video_id)].committed(video_id, comments)

    def statistics(self) -> BusStatistics:
        """Summed over shards; connected only while every shard's LISTEN is up."""
        parts = [b.statistics() for b in self.shards]
        return BusStatistics(
            all(p.connected for p in parts),
            sum(p.channels for p in parts),
            sum(p.reconnects for p in parts),
            sum(p.notifies_sent for p in parts),
            sum(p.wakeups_received for p in parts),
            sum(p.notify_failures for p in parts),
            sum(p.notifications_received for p in parts),
            sum(p.payloads_decoded for p in parts),
        )

    async def run(
        self, receiver: WakeUpReceiver, *, task_status=trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Run every shard's bus; all of them hand wake-ups to ``receiver``, and a
        shard's bus reconnecting resyncs every actor (cheap for the other shards'
        videos: one read each)."""
        async with trio.open_nursery() as nursery:
            for bus in self.shards:
                await nursery.start(bus.run, receiver)
            task_status.started(self)


class _ShardGate:
    """The gate's per-video viewer counts, restricted to one shard's videos."""

    def __init__(self, gate, route: Router, index: int) -> None:
        self._gate = gate
        self._route = route
        self._index = index

    def viewers(self) -> dict[str, int]:
        return {v: n for v, n in self._gate.viewers().items() if self._route(v) == self._index}

    def viewers_of(self, video_id: str) -> int:
        return self._gate.viewers_of(video_id)


class ShardedViewerCounts:
    """Each shard's ``viewer_counts`` holds its own videos' rows, published by one
    ``ViewerCounts`` per shard; totals are read from the video's shard."""

    def __init__(self, shards: Sequence[Shard], gate, node_id: str, interval: float, ttl: float):
        self._route = Router(len(shards))
        self.node_id = node_id
        self.shards = [
            ViewerCounts(s.db, _ShardGate(gate, self._route, s.index), node_id, interval, ttl)
            for s in shards
        ]

    def total(self, video_id: str) -> int:
        return self.shards[self._route(video_id)].total(video_id)

    async def read_total(self, video_id: str) -> int:
        return await self.shards[self._route(video_id)].read_total(video_id)

    def statistics(self) -> ViewerCountStatistics:
        parts = [v.statistics() for v in self.shards]
        return ViewerCountStatistics(
            sum(p.videos_published for p in parts), sum(p.publish_failures for p in parts)
        )

    async def publish_once(self, sweep: bool = False) -> None:
        for counts in self.shards:
            await counts.publish_once(sweep)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            for counts in self.shards:
                await nursery.start(counts.run)
            task_status.started(self)


@dataclass(frozen=True)
class ShardedPools:
    """The pools' ``statistics()`` summed (the ``livehub_db_pool_*`` gauges)."""

    shards: Sequence[Shard]

    def statistics(self) -> tuple[int, int]:
        stats = [s.db.statistics() for s in self.shards]
        return sum(size for size, _ in stats), sum(idle for _, idle in stats)
