"""The moderation rules of a node with several shards: one ``ModerationCache`` per
shard, each refreshed by its own task from its own shard's moderation log, so a
shard that is down leaves the other shards' bans and settings fresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

import trio

from livehub.core.moderation import StoredSettings, VideoRules
from livehub.node.modcache import ModerationCache


class ShardedModerationCache:
    """``ModerationCache``'s API, each video answered by its shard's cache."""

    def __init__(self, caches: Sequence[ModerationCache], route: Callable[[str], int]) -> None:
        self.shards = list(caches)
        self._route = route

    def of(self, video_id: str) -> ModerationCache:
        return self.shards[self._route(video_id)]

    @property
    def refresh_failures(self) -> int:
        return sum(c.refresh_failures for c in self.shards)

    def effective(self, video_id: str, stored: StoredSettings | None):
        return self.of(video_id).effective(video_id, stored)

    async def rules(self, video_id: str) -> VideoRules:
        return await self.of(video_id).rules(video_id)

    async def check_post(self, video_id: str, user_id: str, message: str) -> None:
        await self.of(video_id).check_post(video_id, user_id, message)

    def max_message_chars(self, video_id: str) -> int:
        return self.of(video_id).max_message_chars(video_id)

    def slow_mode_override(self, video_id: str) -> float | None:
        return self.of(video_id).slow_mode_override(video_id)

    async def changed(self, video_id: str) -> None:
        await self.of(video_id).changed(video_id)

    async def reload(self, video_ids: list[str]) -> None:
        for video_id in video_ids:
            await self.of(video_id).reload([video_id])

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            for cache in self.shards:
                await nursery.start(cache.run)
            task_status.started(self)
