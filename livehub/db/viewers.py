"""ViewerCounts: publish this node's viewers per video, read the total over all nodes.

Every ``viewer_count_seconds`` the node upserts one row per video it has viewers of
(and a last 0 for a video it just lost), then reads the other nodes' fresh rows
(``updated_at`` within the TTL) for the same videos. A video's total is the other
nodes' sum plus this node's live count, so it moves at once for local viewers and
within an interval for remote ones. A dead node's rows age out of the sum.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NoReturn, Protocol

import trio

from livehub.core.errors import StoreUnavailable
from livehub.db.bridge import Database

log = logging.getLogger("livehub.db.viewers")

UPSERT_SQL = """
INSERT INTO viewer_counts AS vc (node_id, video_id, count, updated_at)
SELECT $1, v, c, now() FROM unnest($2::text[], $3::int[]) AS u(v, c)
ON CONFLICT (video_id, node_id) DO UPDATE SET count = EXCLUDED.count, updated_at = now()
"""
OTHERS_SQL = """
SELECT video_id, sum(count)::int8 FROM viewer_counts
WHERE video_id = ANY($1::text[]) AND node_id <> $2
  AND updated_at > now() - make_interval(secs => $3) AND count > 0
GROUP BY video_id
"""
TOTAL_SQL = """
SELECT coalesce(sum(count), 0)::int8 FROM viewer_counts
WHERE video_id = $1 AND updated_at > now() - make_interval(secs => $2)
"""
FORGET_SQL = "DELETE FROM viewer_counts WHERE node_id = $1"
SWEEP_SQL = "DELETE FROM viewer_counts WHERE updated_at < now() - make_interval(secs => $1)"
SWEEP_EVERY = 100  # publish rounds between sweeps of dead nodes' rows
SWEEP_AGE_SECONDS = 3600.0
READ_CACHE_MAX = 10_000  # videos whose total a history request read, remembered briefly


class LocalViewers(Protocol):
    """This node's own viewers per video (``livehub.node.gate.Gate`` counts them)."""

    def viewers(self) -> dict[str, int]: ...

    def viewers_of(self, video_id: str) -> int: ...


@dataclass(frozen=True)
class ViewerCountStatistics:
    videos_published: int  # videos this node published a count for last round
    publish_failures: int


class ViewerCounts:
    def __init__(
        self, db: Database, gate: LocalViewers, node_id: str, interval: float, ttl: float
    ) -> None:
        self._db = db
        self._gate = gate
        self.node_id = node_id
        self.interval = interval
        self.ttl = ttl
        self._published: set[str] = set()
        self._others: dict[str, int] = {}
        self._read_cache: dict[str, tuple[float, int]] = {}
        self._failures = 0

    def total(self, video_id: str) -> int:
        """Viewers of ``video_id`` on every node, for a video this node streams."""
        return self._others.get(video_id, 0) + self._gate.viewers_of(video_id)

    def statistics(self) -> ViewerCountStatistics:
        return ViewerCountStatistics(len(self._published), self._failures)

    async def read_total(self, video_id: str) -> int:
        """The total for any video (history responses): cached for one interval.

        Raises:
            StoreUnavailable: Postgres did not answer.
        """
        if self._gate.viewers_of(video_id) or video_id in self._others:
            return self.total(video_id)
        now = trio.current_time()
        hit = self._read_cache.get(video_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        count = int(await self._db.fetchval(TOTAL_SQL, video_id, self.ttl))
        if len(self._read_cache) >= READ_CACHE_MAX:
            self._read_cache.clear()
        self._read_cache[video_id] = (now + self.interval, count)
        return count

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Publish and read every interval. Resource handling: on the way out (node
        shutdown) this node's rows are deleted, bounded, so totals drop at once."""
        task_status.started(self)
        rounds = 0
        try:
            while True:
                await self.publish_once(sweep=rounds % SWEEP_EVERY == 0)
                rounds += 1
                await trio.sleep(self.interval)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await self._db.execute(FORGET_SQL, self.node_id)
                except StoreUnavailable:
                    pass

    async def publish_once(self, sweep: bool = False) -> None:
        """One round: upsert this node's counts, read the others'."""
        local = self._gate.viewers()
        gone = self._published - local.keys()
        videos = [*local, *gone]
        try:
            if videos:
                counts = [local.get(v, 0) for v in videos]
                await self._db.execute(UPSERT_SQL, self.node_id, videos, counts)
                rows = await self._db.fetch(OTHERS_SQL, list(local), self.node_id, self.ttl)
                self._others = {r[0]: int(r[1]) for r in rows}
            else:
                self._others = {}
            self._published = set(local)
            if sweep:
                await self._db.execute(SWEEP_SQL, SWEEP_AGE_SECONDS)
        except StoreUnavailable as exc:
            self._failures += 1
            log.warning("viewer counts not published: %s", exc.message)
