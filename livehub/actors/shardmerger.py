"""One ``InsertMerger`` per shard: a merged transaction holds only videos of one
shard (a transaction cannot span Postgres instances), and a shard that is down
fails only the posts to its own videos."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

import trio

from livehub.actors.merger import InsertMerger
from livehub.actors.messages import Reply
from livehub.actors.ports import CommentStore, Result
from livehub.config import Settings
from livehub.core.model import Draft


class ShardedMerger:
    """An :class:`~livehub.actors.ports.Inserter` routing each video's batch to its
    shard's merger (``route``: video id -> shard index)."""

    def __init__(
        self, stores: Sequence[CommentStore], route: Callable[[str], int], settings: Settings
    ) -> None:
        merge = settings.max_batch > 1  # as the registry's own merger
        in_flight = 4 if merge else settings.max_db_connections
        self.shards = [InsertMerger(store, merge, in_flight) for store in stores]
        self._route = route

    @property
    def transactions(self) -> int:
        return sum(m.transactions for m in self.shards)

    def submit(self, video_id: str, drafts: Sequence[Draft]) -> Reply[list[Result]]:
        return self.shards[self._route(video_id)].submit(video_id, drafts)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            for merger in self.shards:
                await nursery.start(merger.run)
            task_status.started(self)
