"""PgCommentStore: the plain SQL behind comments. Postgres is the source of truth."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from livehub.core.errors import Unstorable
from livehub.core.model import STREAM_PAGE, Comment, Draft, Entry, Event, pinned_data, tombstone
from livehub.core.validate import check_storable
from livehub.db.bridge import Database

# Text asyncpg cannot encode (a surrogate code point: not UTF-8) or Postgres text
# cannot hold (NUL). Paired surrogates do not occur in a decoded str.
# Postgres refusing the data itself (class 22, a CHECK): the rows' fault, not the
# database's. Anything else (a unique violation, a read-only standby) is not.
_REJECTED = (asyncpg.exceptions.DataError, asyncpg.exceptions.CheckViolationError)

_CREATED = """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

# One statement, so one implicit transaction and one round trip. The upsert on the
# video's counter row takes its row lock: writers of one video serialize across all
# nodes, and an aborted statement rolls the counter back, so seqs have no holes.
# No NOTIFY here: the node sends wake-ups after commit (docs/ARCHITECTURE.md, the
# write path: a notifying commit takes a cluster-wide lock until it is flushed).
INSERT_SQL = f"""
WITH bump AS (
    INSERT INTO videos AS v (video_id, last_seq) VALUES ($1, $2)
    ON CONFLICT (video_id) DO UPDATE SET last_seq = v.last_seq + EXCLUDED.last_seq
    RETURNING last_seq
)
INSERT INTO comments (video_id, seq, user_id, message, user_name)
SELECT $1, bump.last_seq - $2 + u.ord, u.user_id, u.message, u.user_name
FROM bump, unnest($3::text[], $4::text[], $5::text[])
    WITH ORDINALITY AS u(user_id, message, user_name, ord)
RETURNING seq, user_id, message, {_CREATED} AS created_at, user_name
"""

# The same for several videos in one transaction (the node's merged group commit).
# Counter rows are locked in video_id order, by every node, so concurrent merged
# inserts wait for each other but never deadlock.
INSERT_MANY_SQL = f"""
WITH input AS (
    SELECT v, u, m, n, o FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        WITH ORDINALITY AS t(v, u, m, n, o)
), counts AS (
    SELECT v, count(*)::bigint AS n FROM input GROUP BY v
), bump AS (
    INSERT INTO videos AS vv (video_id, last_seq)
    SELECT v, n FROM counts ORDER BY v
    ON CONFLICT (video_id) DO UPDATE SET last_seq = vv.last_seq + EXCLUDED.last_seq
    RETURNING video_id, last_seq
)
INSERT INTO comments (video_id, seq, user_id, message, user_name)
SELECT i.v, b.last_seq - c.n + row_number() OVER (PARTITION BY i.v ORDER BY i.o), i.u, i.m, i.n
FROM input i JOIN bump b ON b.video_id = i.v JOIN counts c ON c.v = i.v
RETURNING video_id, seq, user_id, message, {_CREATED} AS created_at, user_name
"""

# History pages and ?since= hold the comments people can read: moderation events
# and deleted comments are not in them (comments' seqs then have holes).
_VISIBLE = "kind = 'comment' AND deleted_at IS NULL"

HISTORY_SQL = f"""
SELECT seq, user_id, message, {_CREATED} AS created_at, user_name FROM comments
WHERE video_id = $1 AND seq < $2 AND {_VISIBLE} ORDER BY seq DESC LIMIT $3
"""

RANGE_SQL = f"""
SELECT seq, user_id, message, {_CREATED} AS created_at, user_name FROM comments
WHERE video_id = $1 AND seq > $2 AND seq <= $3 AND {_VISIBLE} ORDER BY seq LIMIT $4
"""

# The stream, every seq: comments, moderation events, and a deleted comment's seq
# without its text (the row becomes a tombstone in ``_entry``).
_STREAM_COLUMNS = f"""seq, user_id, CASE WHEN deleted_at IS NULL THEN message END,
    {_CREATED} AS created_at, kind, target_seq, user_name"""

STREAM_SQL = f"""
SELECT {_STREAM_COLUMNS} FROM comments
WHERE video_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4
"""

STREAM_TAIL_SQL = f"""
SELECT {_STREAM_COLUMNS} FROM comments WHERE video_id = $1 ORDER BY seq DESC LIMIT $2
"""

PINNED_SQL = f"""
SELECT c.seq, c.user_id, c.message, {_CREATED.replace("created_at", "c.created_at")},
    c.user_name
FROM video_settings s JOIN comments c ON c.video_id = s.video_id AND c.seq = s.pinned_seq
WHERE s.video_id = $1 AND c.kind = 'comment' AND c.deleted_at IS NULL
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
            Unstorable: a draft cannot be stored (checked first) or Postgres refused
                the data; nothing was stored.
        """
        for d in drafts:
            check_storable(video_id, d)
        try:
            rows = await self.db.fetch(
                INSERT_SQL,
                video_id,
                len(drafts),
                [d.user_id for d in drafts],
                [d.message for d in drafts],
                [d.user_name for d in drafts],
            )
        except _REJECTED as exc:
            raise Unstorable(
                f"the database refused the comment ({getattr(exc, 'sqlstate', None)})"
            ) from None
        comments = [Comment(video_id, r[0], r[1], r[2], r[3], r[4]) for r in rows]
        comments.sort(key=lambda c: c.seq)
        return comments

    async def insert_many(
        self, batches: Sequence[tuple[str, Sequence[Draft]]]
    ) -> dict[str, list[Comment]]:
        """Store several videos' drafts in one transaction; each video's comments get
        its next seqs, in draft order.

        Raises:
            StoreUnavailable: Postgres is down or too slow; nothing was acknowledged.
            Unstorable: some draft cannot be stored (checked first), or Postgres
                refused the data; nothing was stored (the caller finds which one).
        """
        videos, users, messages, names = [], [], [], []
        for video_id, drafts in batches:
            for d in drafts:
                check_storable(video_id, d)
                videos.append(video_id)
                users.append(d.user_id)
                messages.append(d.message)
                names.append(d.user_name)
        try:
            rows = await self.db.fetch(INSERT_MANY_SQL, videos, users, messages, names)
        except _REJECTED as exc:
            raise Unstorable(
                f"the database refused the comment ({getattr(exc, 'sqlstate', None)})"
            ) from None
        out: dict[str, list[Comment]] = {video_id: [] for video_id, _ in batches}
        for r in rows:
            out[r[0]].append(Comment(r[0], r[1], r[2], r[3], r[4], r[5]))
        for comments in out.values():
            comments.sort(key=lambda c: c.seq)
        return out

    async def history(self, video_id: str, before: int | None, limit: int) -> list[Comment]:
        """Up to ``limit`` comments with seq < ``before`` (or the newest), newest first."""
        bound = NO_UPPER_BOUND if before is None else before
        rows = await self.db.fetch(HISTORY_SQL, video_id, bound, limit)
        return [Comment(video_id, r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def read_range(
        self, video_id: str, after: int, until: int | None = None, limit: int = STREAM_PAGE
    ) -> list[Comment]:
        """Comments with ``after`` < seq <= ``until``, oldest first, at most ``limit``."""
        upper = NO_UPPER_BOUND if until is None else until
        rows = await self.db.fetch(RANGE_SQL, video_id, after, upper, limit)
        return [Comment(video_id, r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def read_stream(
        self, video_id: str, after: int, until: int | None = None, limit: int = STREAM_PAGE
    ) -> list[Entry]:
        """Every stream entry with ``after`` < seq <= ``until``, oldest first: what a
        viewer catching up gets (deleted comments as tombstones)."""
        upper = NO_UPPER_BOUND if until is None else until
        rows = await self.db.fetch(STREAM_SQL, video_id, after, upper, limit)
        return [_entry(video_id, r) for r in rows]

    async def stream_tail(self, video_id: str, limit: int) -> list[Entry]:
        """The newest ``limit`` stream entries, oldest first (an actor's ring)."""
        rows = await self.db.fetch(STREAM_TAIL_SQL, video_id, limit)
        rows.reverse()
        return [_entry(video_id, r) for r in rows]

    async def pinned_comment(self, video_id: str) -> Comment | None:
        """The pinned comment (None: nothing pinned, or it was deleted)."""
        r = await self.db.fetchrow(PINNED_SQL, video_id)
        return None if r is None else Comment(video_id, r[0], r[1], r[2], r[3], r[4])

    async def pinned(self, video_id: str) -> tuple[int, str] | None:
        """The pinned comment's seq and its ``pinned`` event data, for new viewers."""
        comment = await self.pinned_comment(video_id)
        return None if comment is None else (comment.seq, pinned_data(video_id, comment))

    async def heads(self, video_ids: Sequence[str]) -> dict[str, int]:
        """The last allocated seq of each video (absent: no comment yet, i.e. 0)."""
        rows = await self.db.fetch(HEADS_SQL, list(video_ids))
        return {r[0]: r[1] for r in rows}

    async def head(self, video_id: str) -> int:
        return (await self.heads([video_id])).get(video_id, 0)

    async def ping(self) -> None:
        await self.db.fetchval("SELECT 1")


def _entry(video_id: str, r) -> Entry:
    seq, user_id, message, created_at, kind, target, user_name = r
    if kind == "comment":
        if message is None:
            return tombstone(video_id, seq, created_at)
        return Comment(video_id, seq, user_id, message, created_at, user_name)
    return Event(video_id, seq, kind, target, message, created_at)
