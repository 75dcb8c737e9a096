"""PgCommentStore: the plain SQL behind comments. Postgres is the source of truth."""

from __future__ import annotations

from collections.abc import Sequence

from .model import Comment, Draft
from .pg import Database

_CREATED = """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

# One statement, so one implicit transaction and one round trip. The upsert on the
# video's counter row takes its row lock: writers of one video serialize across all
# nodes, and an aborted statement rolls the counter back, so seqs have no holes.
# No NOTIFY here: the node sends wake-ups after commit (DESIGN.md).
INSERT_SQL = f"""
WITH bump AS (
    INSERT INTO videos AS v (video_id, last_seq) VALUES ($1, $2)
    ON CONFLICT (video_id) DO UPDATE SET last_seq = v.last_seq + EXCLUDED.last_seq
    RETURNING last_seq
)
INSERT INTO comments (video_id, seq, user_id, message)
SELECT $1, bump.last_seq - $2 + u.ord, u.user_id, u.message
FROM bump, unnest($3::text[], $4::text[]) WITH ORDINALITY AS u(user_id, message, ord)
RETURNING seq, user_id, message, {_CREATED} AS created_at
"""

HISTORY_SQL = f"""
SELECT seq, user_id, message, {_CREATED} AS created_at FROM comments
WHERE video_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3
"""

RANGE_SQL = f"""
SELECT seq, user_id, message, {_CREATED} AS created_at FROM comments
WHERE video_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4
"""

HEADS_SQL = "SELECT video_id, last_seq FROM videos WHERE video_id = ANY($1::text[])"

NO_UPPER_BOUND = 2**62


class PgCommentStore:
    """Comments and counters in Postgres, through the trio-asyncio bridge."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, video_id: str, drafts: Sequence[Draft]) -> list[Comment]:
        """Store ``drafts`` in one transaction; returns them with their seqs, in order.

        Raises:
            StoreUnavailable: Postgres is down or too slow; nothing was acknowledged.
        """
        rows = await self.db.fetch(
            INSERT_SQL,
            video_id,
            len(drafts),
            [d.user_id for d in drafts],
            [d.message for d in drafts],
        )
        comments = [Comment(video_id, r[0], r[1], r[2], r[3]) for r in rows]
        comments.sort(key=lambda c: c.seq)
        return comments

    async def history(self, video_id: str, before: int | None, limit: int) -> list[Comment]:
        """Up to ``limit`` comments with seq < ``before`` (or the newest), newest first."""
        bound = NO_UPPER_BOUND if before is None else before
        rows = await self.db.fetch(HISTORY_SQL, video_id, bound, limit)
        return [Comment(video_id, r[0], r[1], r[2], r[3]) for r in rows]

    async def read_range(
        self, video_id: str, after: int, until: int | None = None, limit: int = 1000
    ) -> list[Comment]:
        """Comments with ``after`` < seq <= ``until``, oldest first, at most ``limit``."""
        upper = NO_UPPER_BOUND if until is None else until
        rows = await self.db.fetch(RANGE_SQL, video_id, after, upper, limit)
        return [Comment(video_id, r[0], r[1], r[2], r[3]) for r in rows]

    async def heads(self, video_ids: Sequence[str]) -> dict[str, int]:
        """The last allocated seq of each video (absent: no comment yet, i.e. 0)."""
        rows = await self.db.fetch(HEADS_SQL, list(video_ids))
        return {r[0]: r[1] for r in rows}

    async def head(self, video_id: str) -> int:
        return (await self.heads([video_id])).get(video_id, 0)

    async def ping(self) -> None:
        await self.db.fetchval("SELECT 1")
