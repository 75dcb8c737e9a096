"""ModerationCache: each node's copy of the bans and chat settings of its videos.

Why a periodic read and not the bus: a ban or a closed chat must hold on every node
within a second, including nodes that have no actor (so no LISTEN) for the video,
and while the bus is reconnecting. So every ``moderation_refresh_seconds`` (0.5 s)
the node re-reads, in two queries, the rules of every video that was posted to in
the last minute; a video's first post reads its rules before it is checked. A change
made on this node is applied to its cache at once. The cost is two small queries per
node per interval, whatever the post rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NoReturn

import trio

from livehub.core.moderation import StoredSettings, VideoRules, check_post, effective
from livehub.db.modstore import PgModerationStore

log = logging.getLogger("livehub.core.moderation")

FORGET_AFTER_SECONDS = 60.0  # a video nobody posted to for this long is dropped
FULL_REFRESH_EVERY = 60  # refreshes (30 s at 0.5 s): reread every live video's rules
RECHECK_SECONDS = 5.0  # log entries this recent are looked at again (late commits)


class ModerationCache:
    """The one owner of this node's moderation rules (a Trio task refreshes them)."""

    def __init__(
        self,
        store: PgModerationStore,
        refresh_seconds: float,
        default_slow: Callable[[str], float],
        server_max_chars: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._default_slow = default_slow
        self._server_max = server_max_chars
        self._clock = clock
        self._wall = wall
        self._rules: dict[str, VideoRules] = {}
        self._used: dict[str, float] = {}
        self._loading: dict[str, trio.Event] = {}
        self.refresh_failures = 0

    def effective(self, video_id: str, stored: StoredSettings | None):
        return effective(stored, self._default_slow(video_id), self._server_max)

    async def rules(self, video_id: str) -> VideoRules:
        """The video's rules (read from Postgres the first time).

        Raises:
            StoreUnavailable: they could not be read.
        """
        self._used[video_id] = self._clock()
        rules = self._rules.get(video_id)
        while rules is None:
            loading = self._loading.get(video_id)
            if loading is not None:  # another task reads them: wait for it
                await loading.wait()
            else:
                self._loading[video_id] = done = trio.Event()
                try:
                    await self.reload([video_id])
                finally:
                    del self._loading[video_id]
                    done.set()
            rules = self._rules.get(video_id)
        return rules

    async def check_post(self, video_id: str, user_id: str, message: str) -> None:
        """Refuse a post from a banned user, to a closed chat, or longer than the
        video's limit (see ``moderation.check_post``); call before the rate limits.

        Raises:
            Forbidden, InvalidComment, StoreUnavailable.
        """
        check_post(await self.rules(video_id), user_id, message, self._wall())

    def max_message_chars(self, video_id: str) -> int:
        """The video's message length limit as last read (the server's if unknown)."""
        rules = self._rules.get(video_id)
        return self._server_max if rules is None else rules.settings.max_message_chars

    def slow_mode_override(self, video_id: str) -> float | None:
        """The video's own slow mode (None: the server's setting applies)."""
        rules = self._rules.get(video_id)
        return None if rules is None else rules.slow_mode_seconds

    async def changed(self, video_id: str) -> None:
        """A change made on this node: apply it here at once (other nodes within one
        refresh interval)."""
        if video_id in self._rules:
            await self.reload([video_id])

    async def reload(self, video_ids: list[str]) -> None:
        """Read these videos' rules now (after a change made here, or on first use)."""
        stored = await self._store.stored_settings(video_ids)
        bans = await self._store.active_bans(video_ids)
        for video_id in video_ids:
            s = stored.get(video_id)
            self._rules[video_id] = VideoRules(
                self.effective(video_id, s),
                None if s is None else s.slow_mode_seconds,
                bans.get(video_id, {}),
            )

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Keep the rules of the videos posted to lately fresh. Each refresh asks the
        moderation log which of them changed (one small query) and reloads only those;
        every FULL_REFRESH_EVERY refreshes, or after a failed one, all of them. Reading
        every video's bans and settings twice a second cost ~0.08 core and 20-40 ms
        tails with 200 live videos."""
        log_id = await self._log_head_or_none()
        task_status.started(self)
        rounds = 0
        while True:
            await trio.sleep(self._refresh_seconds)
            rounds += 1
            cutoff = self._clock() - FORGET_AFTER_SECONDS
            for video_id in [v for v, t in self._used.items() if t < cutoff]:
                del self._used[video_id]
                self._rules.pop(video_id, None)
            videos = list(self._rules)
            if not videos:
                continue
            try:
                if log_id is None or rounds % FULL_REFRESH_EVERY == 0:
                    head = await self._store.log_head()
                    await self.reload(videos)
                else:
                    head, changed = await self._store.changed_since(log_id, videos, RECHECK_SECONDS)
                    if changed:
                        await self.reload([v for v in videos if v in changed])
                log_id = head
            except Exception:  # StoreUnavailable or a Postgres error: keep the last rules
                self.refresh_failures += 1
                log_id = None  # read everything again next time
                log.warning("moderation rules not refreshed", exc_info=True)

    async def _log_head_or_none(self) -> int | None:
        try:
            return await self._store.log_head()
        except Exception:  # Postgres down at start: the first refresh reads everything
            log.warning("moderation log not readable at start", exc_info=True)
            return None
