"""PgWebhookStore: the plain SQL behind webhook deliveries (migration 0005).

Two sources, one delivery loop (``livehub/node/webhooks.py``):

- ``webhook_outbox``: moderation actions write their event here in their own
  transaction (``modstore.py``); a delivered row is deleted.
- ``webhook_cursors``: comments are read from ``comments`` past each video's cursor,
  so the hot insert writes nothing more; the cursor moves once the endpoint
  acknowledged them.

Work is claimed in short transactions with ``FOR UPDATE SKIP LOCKED`` and held by a
lease (``claimed_until``), not by an open transaction during the HTTP request: nodes
never claim the same rows at once, and rows a dead node had claimed come free when
its lease ends. Nothing here locks a ``videos`` row, so deliveries never wait for,
or hold up, comment inserts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from livehub.core.webhookwire import WebhookEvent, comment_stored, outbox_id
from livehub.db.bridge import Database

_CREATED = """to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

# First start with webhooks on: comments stored before are not delivered.
START_SQL = "INSERT INTO webhook_state DEFAULT VALUES ON CONFLICT DO NOTHING RETURNING one"
SEED_SQL = """
INSERT INTO webhook_cursors (video_id, seq) SELECT video_id, last_seq FROM videos
ON CONFLICT DO NOTHING
"""
# A video that has no cursor yet is newer than the start: from its first seq.
PREPARE_SQL = """
INSERT INTO webhook_cursors (video_id, seq) SELECT unnest($1::text[]), 0
ON CONFLICT DO NOTHING
"""
# Which of these videos have stream entries past their cursor.
PENDING_SQL = """
SELECT c.video_id FROM webhook_cursors c JOIN videos v USING (video_id)
WHERE c.video_id = ANY($1::text[]) AND v.last_seq > c.seq
"""
# The sweep: every video with entries past its cursor (or with none yet), and how
# many entries wait in all (a scan of `videos`: run it seldom).
SWEEP_SQL = """
SELECT v.video_id, v.last_seq - coalesce(c.seq, 0)
FROM videos v LEFT JOIN webhook_cursors c USING (video_id)
WHERE v.last_seq > coalesce(c.seq, 0)
"""
OUTBOX_COUNT_SQL = "SELECT count(*) FROM webhook_outbox"

CLAIM_OUTBOX_SQL = f"""
WITH due AS (
    SELECT id FROM webhook_outbox
    WHERE next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY id LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_outbox o SET claimed_until = now() + $2::float8 * interval '1 second'
FROM due WHERE o.id = due.id
RETURNING o.id, o.video_id, o.type, o.payload::text, {_CREATED.format(col="o.created_at")},
    o.attempts
"""
CLAIM_CURSORS_SQL = """
WITH due AS (
    SELECT c.video_id FROM webhook_cursors c JOIN videos v USING (video_id)
    WHERE c.video_id = ANY($1::text[]) AND v.last_seq > c.seq
      AND c.next_attempt_at <= now() AND (c.claimed_until IS NULL OR c.claimed_until < now())
    ORDER BY c.next_attempt_at LIMIT $2
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE webhook_cursors c SET claimed_until = now() + $3::float8 * interval '1 second'
FROM due WHERE c.video_id = due.video_id
RETURNING c.video_id, c.seq, c.attempts
"""
# Each claimed video's next stream entries, every kind (the cursor moves past
# moderation events too; only comments are delivered from here).
READ_SQL = f"""
SELECT c.video_id, x.seq, x.kind, x.user_id,
    CASE WHEN x.deleted_at IS NULL THEN x.message END, {_CREATED.format(col="x.created_at")},
    x.user_name
FROM unnest($1::text[], $2::bigint[]) AS c(video_id, seq)
CROSS JOIN LATERAL (
    SELECT seq, kind, user_id, message, deleted_at, created_at, user_name FROM comments
    WHERE video_id = c.video_id AND seq > c.seq ORDER BY seq LIMIT $3
) x
ORDER BY c.video_id, x.seq
"""
ACK_OUTBOX_SQL = "DELETE FROM webhook_outbox WHERE id = ANY($1::bigint[])"
ACK_CURSORS_SQL = """
UPDATE webhook_cursors c SET seq = greatest(c.seq, u.seq), attempts = 0,
    next_attempt_at = now(), claimed_until = NULL
FROM unnest($1::text[], $2::bigint[]) AS u(video_id, seq) WHERE c.video_id = u.video_id
"""
FAIL_OUTBOX_SQL = """
UPDATE webhook_outbox SET attempts = attempts + 1, claimed_until = NULL,
    next_attempt_at = now() + $2::float8 * interval '1 second'
WHERE id = ANY($1::bigint[])
"""
FAIL_CURSORS_SQL = """
UPDATE webhook_cursors SET attempts = attempts + 1, claimed_until = NULL,
    next_attempt_at = now() + $2::float8 * interval '1 second'
WHERE video_id = ANY($1::text[])
"""
INSERT_OUTBOX_SQL = """
INSERT INTO webhook_outbox (video_id, type, payload) VALUES ($1, $2, $3::jsonb)
"""


@dataclass(frozen=True)
class Claimed:
    """What one node delivers next: events, and what to mark when they are done."""

    events: list[WebhookEvent]
    outbox_ids: list[int]
    cursors: dict[str, int]  # video -> the seq its cursor moves to once delivered
    attempts: int  # the most attempts any of it had (drives the backoff)

    @property
    def empty(self) -> bool:
        return not self.outbox_ids and not self.cursors


class PgWebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self) -> bool:
        """Record that webhooks are on; the first time ever, start every existing
        video's cursor at its head. True: this call did that."""

        async def run(conn) -> bool:
            async with conn.transaction():
                if await conn.fetchval(START_SQL) is None:
                    return False
                await conn.execute(SEED_SQL)
                return True

        return await self.db.with_connection(run)

    async def pending(self, video_ids: Sequence[str]) -> set[str]:
        """Which of these videos have undelivered stream entries (cursors are made
        for videos that have none yet)."""
        await self.db.execute(PREPARE_SQL, list(video_ids))
        return {r[0] for r in await self.db.fetch(PENDING_SQL, list(video_ids))}

    async def sweep(self) -> tuple[set[str], int]:
        """(every video with undelivered stream entries, the events waiting in all)."""
        rows = await self.db.fetch(SWEEP_SQL)
        outbox = await self.db.fetchval(OUTBOX_COUNT_SQL)
        return {r[0] for r in rows}, outbox + sum(r[1] for r in rows)

    async def claim(self, video_ids: Sequence[str], limit: int, lease_seconds: float) -> Claimed:
        """Claim up to ``limit`` due outbox rows and the due streams among
        ``video_ids``, with their next entries (at most ``limit`` per video)."""
        rows = await self.db.fetch(CLAIM_OUTBOX_SQL, limit, lease_seconds)
        events, outbox_ids, attempts = [], [], 0
        for row_id, video_id, kind, payload, created_at, tries in sorted(rows):
            events.append(
                WebhookEvent(outbox_id(row_id), kind, video_id, created_at, json.loads(payload))
            )
            outbox_ids.append(row_id)
            attempts = max(attempts, tries)
        cursors: dict[str, int] = {}
        if video_ids:
            claimed = await self.db.fetch(CLAIM_CURSORS_SQL, list(video_ids), limit, lease_seconds)
            if claimed:
                names = [r[0] for r in claimed]
                seqs = [r[1] for r in claimed]
                cursors = dict(zip(names, seqs, strict=True))
                attempts = max([attempts, *(r[2] for r in claimed)])
                per_video = max(1, limit // len(claimed))  # about ``limit`` events in all
                for video_id, seq, kind, user, message, created, name in await self.db.fetch(
                    READ_SQL, names, seqs, per_video
                ):
                    cursors[video_id] = max(cursors[video_id], seq)
                    if kind == "comment":
                        events.append(comment_stored(video_id, seq, user, message, created, name))
        return Claimed(events, outbox_ids, cursors, attempts)

    async def delivered(self, claimed: Claimed) -> None:
        if claimed.outbox_ids:
            await self.db.execute(ACK_OUTBOX_SQL, claimed.outbox_ids)
        if claimed.cursors:
            names = list(claimed.cursors)
            await self.db.execute(ACK_CURSORS_SQL, names, [claimed.cursors[v] for v in names])

    async def failed(self, claimed: Claimed, retry_in_seconds: float) -> None:
        if claimed.outbox_ids:
            await self.db.execute(FAIL_OUTBOX_SQL, claimed.outbox_ids, retry_in_seconds)
        if claimed.cursors:
            await self.db.execute(FAIL_CURSORS_SQL, list(claimed.cursors), retry_in_seconds)


async def write_outbox(conn, video_id: str, kind: str, payload: dict) -> None:
    """Add a moderation event to the outbox on ``conn``, inside the caller's
    transaction (asyncio side: called from ``modstore``'s transactions)."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    await conn.execute(INSERT_OUTBOX_SQL, video_id, kind, data)
