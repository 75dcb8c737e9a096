"""One ``InsertMerger`` per shard: a merged transaction holds only videos of one
shard (a transaction cannot span Postgres instances), and a shard that is down
fails only the posts to its own videos."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

import trio

from livehub.actors.merger import InsertMerger, Result
from livehub.actors.messages import Reply
from livehub.core.model import Draft


class ShardedMerger:
    """``InsertMerger``'s API (``submit``, ``insert``, ``run``), routed by video."""

    def __init__(self, stores: Sequence, route: Callable[[str], int]) -> None:
        self.shards = [InsertMerger(store) for store in stores]
        self._route = route

    @property
    def transactions(self) -> int:
        return sum(m.transactions for m in self.shards)

    def submit(self, video_id: str, drafts: Sequence[Draft]) -> Reply[list[Result]]:
        return self.shards[self._route(video_id)].submit(video_id, drafts)

    async def insert(self, video_id: str, drafts: Sequence[Draft]) -> list[Result]:
        return await self.submit(video_id, drafts).wait()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            for merger in self.shards:
                await nursery.start(merger.run)
            task_status.started(self)
