"""PgModerationStore: the plain SQL behind moderation (migration 0004).

Every action that changes what viewers see (a deletion, a pin, a settings change)
runs in one transaction that first locks the video's counter row, as an insert of
comments does, takes the next seqs for its events, writes them into ``comments``
(``kind`` ``deleted``/``pinned``/``settings``) and records the action in
``moderation_log``. Locking the counter row first, always, keeps one lock order with
the comment inserts, so nothing deadlocks; and the events' seqs follow every comment
committed before them, so the stream stays one gapless order on every node.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from livehub.core.model import Comment, Event, deleted_data, pinned_data
from livehub.core.moderation import ChatSettings, StoredSettings
from livehub.core.webhookwire import moderation_payload
from livehub.db.bridge import Database
from livehub.db.webhooks import write_outbox

_CREATED = """to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
_TS = _CREATED.format(col="created_at")

# Lock (or create) the counter row and take ``$2`` seqs: returns the new last_seq.
BUMP_SQL = """
INSERT INTO videos AS v (video_id, last_seq) VALUES ($1, $2)
ON CONFLICT (video_id) DO UPDATE SET last_seq = v.last_seq + EXCLUDED.last_seq
RETURNING last_seq
"""
LOCK_SQL = "SELECT last_seq FROM videos WHERE video_id = $1 FOR UPDATE"

INSERT_EVENTS_SQL = f"""
INSERT INTO comments (video_id, seq, user_id, message, kind, target_seq)
SELECT $1, $2 + u.o, $3, u.d, $4, u.t
FROM unnest($5::bigint[], $6::text[]) WITH ORDINALITY AS u(t, d, o)
RETURNING seq, kind, target_seq, message, {_TS}
"""

DELETE_SEQS_SQL = """
UPDATE comments SET deleted_at = now()
WHERE video_id = $1 AND seq = ANY($2::bigint[]) AND kind = 'comment' AND deleted_at IS NULL
RETURNING seq
"""
DELETE_USER_SQL = """
UPDATE comments SET deleted_at = now()
WHERE video_id = $1 AND user_id = $2 AND kind = 'comment' AND deleted_at IS NULL
RETURNING seq
"""
# Pins that carried a deleted comment's text now pin nothing, in every replay.
BLANK_PINS_SQL = """
UPDATE comments SET message = $3
WHERE video_id = $1 AND kind = 'pinned' AND target_seq = ANY($2::bigint[])
"""
CLEAR_PIN_SQL = """
UPDATE video_settings SET pinned_seq = NULL, updated_at = now()
WHERE video_id = $1 AND pinned_seq = ANY($2::bigint[])
"""

COMMENT_SQL = f"""
SELECT seq, user_id, message, {_TS}, user_name FROM comments
WHERE video_id = $1 AND seq = $2 AND kind = 'comment' AND deleted_at IS NULL
"""
AUTHOR_SQL = """
SELECT user_id FROM comments
WHERE video_id = $1 AND seq = $2 AND kind = 'comment' AND deleted_at IS NULL
"""

SET_PIN_SQL = """
INSERT INTO video_settings (video_id, pinned_seq) VALUES ($1, $2)
ON CONFLICT (video_id) DO UPDATE SET pinned_seq = EXCLUDED.pinned_seq, updated_at = now()
"""
PINNED_SEQ_SQL = "SELECT pinned_seq FROM video_settings WHERE video_id = $1"

SETTINGS_SQL = """
SELECT video_id, closed, slow_mode_seconds, max_message_chars FROM video_settings
WHERE video_id = ANY($1::text[])
"""
# $2..$4: the new values; $5..$7: whether each is being set (else kept).
UPSERT_SETTINGS_SQL = """
INSERT INTO video_settings AS s (video_id, closed, slow_mode_seconds, max_message_chars)
VALUES ($1, $2, $3, $4)
ON CONFLICT (video_id) DO UPDATE SET
    closed = CASE WHEN $5 THEN EXCLUDED.closed ELSE s.closed END,
    slow_mode_seconds = CASE WHEN $6 THEN EXCLUDED.slow_mode_seconds ELSE s.slow_mode_seconds END,
    max_message_chars = CASE WHEN $7 THEN EXCLUDED.max_message_chars ELSE s.max_message_chars END,
    updated_at = now()
RETURNING closed, slow_mode_seconds, max_message_chars
"""

# Which of these videos had a moderation action since log id $1 (every action that
# changes bans or settings writes moderation_log in its transaction), and the log's
# head. Ids are taken at insert, so a transaction that commits after a later one
# shows a lower id than the head already seen: actions of the last RECHECK_SECONDS are
# looked at again on every refresh, so such a late commit is not missed.
CHANGED_SQL = """
SELECT coalesce(max(id), $1)::bigint,
       coalesce(array_agg(DISTINCT video_id) FILTER (WHERE video_id = ANY($2::text[])), '{}')
FROM moderation_log
WHERE id > $1 OR created_at > now() - $3::float8 * interval '1 second'
"""
LOG_HEAD_SQL = "SELECT coalesce(max(id), 0)::bigint FROM moderation_log"
ACTIVE_BANS_SQL = """
SELECT video_id, user_id, extract(epoch FROM expires_at)::float8 FROM bans
WHERE video_id = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > now())
"""
_BAN_COLUMNS = f"""user_id, {_CREATED.format(col="expires_at")}, created_by, {_TS}"""
UPSERT_BAN_SQL = f"""
INSERT INTO bans (video_id, user_id, expires_at, created_by)
VALUES ($1, $2, CASE WHEN $3::float8 IS NULL THEN NULL
                     ELSE now() + $3::float8 * interval '1 second' END, $4)
ON CONFLICT (video_id, user_id) DO UPDATE SET
    expires_at = EXCLUDED.expires_at, created_by = EXCLUDED.created_by, created_at = now()
RETURNING {_BAN_COLUMNS}
"""
LIST_BANS_SQL = f"""
SELECT {_BAN_COLUMNS} FROM bans
WHERE video_id = $1 AND (expires_at IS NULL OR expires_at > now())
ORDER BY created_at DESC, user_id LIMIT $2
"""
UNBAN_SQL = """
DELETE FROM bans WHERE video_id = $1 AND user_id = $2
    AND (expires_at IS NULL OR expires_at > now())
"""

LOG_SQL = """
INSERT INTO moderation_log (video_id, actor, action, target, detail)
VALUES ($1, $2, $3, $4, $5::jsonb)
"""
LOG_PAGE_SQL = f"""
SELECT id, actor, action, target, detail::text, {_TS} FROM moderation_log
WHERE video_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3
"""

NO_UPPER_BOUND = 2**62


@dataclass(frozen=True)
class Ban:
    video_id: str
    user_id: str
    expires_at: str | None  # RFC 3339; None: permanent
    created_by: str
    created_at: str

    def as_dict(self) -> dict[str, object]:
        return {
            "video_id": self.video_id,
            "user_id": self.user_id,
            "expires_at": self.expires_at,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class PgModerationStore:
    """Bans, chat settings, pins, deletions and the moderation log in Postgres."""

    def __init__(self, db: Database, webhooks: bool = False) -> None:
        self.db = db
        # Webhooks on: each action also writes its event to the webhook outbox, in
        # its own transaction (migration 0005).
        self.webhooks = webhooks

    # -- reads for the node's cache --
    async def stored_settings(self, video_ids: Sequence[str]) -> dict[str, StoredSettings]:
        rows = await self.db.fetch(SETTINGS_SQL, list(video_ids))
        return {r[0]: StoredSettings(r[1], r[2], r[3]) for r in rows}

    async def log_head(self) -> int:
        """The newest moderation log id (0: none yet)."""
        return await self.db.fetchval(LOG_HEAD_SQL)

    async def changed_since(
        self, log_id: int, video_ids: Sequence[str], recheck_seconds: float
    ) -> tuple[int, set[str]]:
        """(the log's head, which of ``video_ids`` had an action after ``log_id`` or in
        the last ``recheck_seconds``)."""
        row = await self.db.fetchrow(CHANGED_SQL, log_id, list(video_ids), recheck_seconds)
        return row[0], set(row[1])

    async def active_bans(self, video_ids: Sequence[str]) -> dict[str, dict[str, float | None]]:
        """Per video: banned user -> end of the ban (epoch seconds; None: permanent)."""
        rows = await self.db.fetch(ACTIVE_BANS_SQL, list(video_ids))
        out: dict[str, dict[str, float | None]] = {}
        for video_id, user_id, until in rows:
            out.setdefault(video_id, {})[user_id] = until
        return out

    async def author(self, video_id: str, seq: int) -> str | None:
        """Who wrote comment ``seq`` (None: no such visible comment)."""
        return await self.db.fetchval(AUTHOR_SQL, video_id, seq)

    # -- actions; each returns the stream events it committed, in seq order --
    async def delete(self, video_id: str, seq: int, actor: str) -> list[Event]:
        """Delete one comment; [] when it does not exist (or is already deleted)."""

        async def run(conn) -> list[Event]:
            async with conn.transaction():
                if await conn.fetchval(LOCK_SQL, video_id) is None:
                    return []
                rows = await conn.fetch(DELETE_SEQS_SQL, video_id, [seq])
                events = await _deletion_events(conn, video_id, [r[0] for r in rows], actor)
                if events:
                    detail = {"event_seq": events[0].seq}
                    await _log(self.webhooks, conn, video_id, actor, "delete", str(seq), detail)
                return events

        return await self.db.with_connection(run)

    async def ban(
        self, video_id: str, user_id: str, seconds: float | None, actor: str, delete: bool
    ) -> tuple[Ban, list[Event]]:
        """Ban (or re-ban) ``user_id``; with ``delete`` their comments go too."""

        async def run(conn) -> tuple[Ban, list[Event]]:
            async with conn.transaction():
                events: list[Event] = []
                if delete and await conn.fetchval(LOCK_SQL, video_id) is not None:
                    rows = await conn.fetch(DELETE_USER_SQL, video_id, user_id)
                    seqs = [r[0] for r in rows]
                    events = await _deletion_events(conn, video_id, seqs, actor)
                r = await conn.fetchrow(UPSERT_BAN_SQL, video_id, user_id, seconds, actor)
                detail = {"seconds": seconds, "deleted": [e.target for e in events]}
                await _log(self.webhooks, conn, video_id, actor, "ban", user_id, detail)
                return Ban(video_id, r[0], r[1], r[2], r[3]), events

        return await self.db.with_connection(run)

    async def unban(self, video_id: str, user_id: str, actor: str) -> bool:
        async def run(conn) -> bool:
            async with conn.transaction():
                status = await conn.execute(UNBAN_SQL, video_id, user_id)
                if status.endswith(" 0"):
                    return False
                await _log(self.webhooks, conn, video_id, actor, "unban", user_id, {})
                return True

        return await self.db.with_connection(run)

    async def bans(self, video_id: str, limit: int = 1000) -> list[Ban]:
        rows = await self.db.fetch(LIST_BANS_SQL, video_id, limit)
        return [Ban(video_id, r[0], r[1], r[2], r[3]) for r in rows]

    async def pin(self, video_id: str, seq: int | None, actor: str) -> list[Event] | None:
        """Pin comment ``seq`` (None: unpin). None: no such visible comment; []:
        unpinning when nothing was pinned."""

        async def run(conn) -> list[Event] | None:
            async with conn.transaction():
                if await conn.fetchval(LOCK_SQL, video_id) is None:
                    return None if seq is not None else []
                if seq is None:
                    if await conn.fetchval(PINNED_SEQ_SQL, video_id) is None:
                        return []
                    data = pinned_data(video_id, None)
                else:
                    r = await conn.fetchrow(COMMENT_SQL, video_id, seq)
                    if r is None:
                        return None
                    data = pinned_data(video_id, Comment(video_id, r[0], r[1], r[2], r[3], r[4]))
                await conn.execute(SET_PIN_SQL, video_id, seq)
                events = await _insert_events(conn, video_id, actor, "pinned", [seq], [data])
                action = "pin" if seq is not None else "unpin"
                target = None if seq is None else str(seq)
                await _log(
                    self.webhooks,
                    conn,
                    video_id,
                    actor,
                    action,
                    target,
                    {"event_seq": events[0].seq},
                )
                return events

        return await self.db.with_connection(run)

    async def update_settings(
        self,
        video_id: str,
        changes: dict[str, object],
        actor: str,
        effective: Callable[[StoredSettings], ChatSettings],
    ) -> tuple[ChatSettings, list[Event]]:
        """Apply ``changes`` (field -> value, None: back to the default); viewers get a
        ``settings`` event with the settings now in force."""

        async def run(conn) -> tuple[ChatSettings, list[Event]]:
            async with conn.transaction():
                await conn.fetchval(BUMP_SQL, video_id, 0)  # lock (or create) the counter row
                r = await conn.fetchrow(
                    UPSERT_SETTINGS_SQL,
                    video_id,
                    changes.get("closed"),
                    changes.get("slow_mode_seconds"),
                    changes.get("max_message_chars"),
                    "closed" in changes,
                    "slow_mode_seconds" in changes,
                    "max_message_chars" in changes,
                )
                now = effective(StoredSettings(r[0], r[1], r[2]))
                data = _dumps({"video_id": video_id, **now.as_dict()})
                events = await _insert_events(conn, video_id, actor, "settings", [None], [data])
                await _log(self.webhooks, conn, video_id, actor, "settings", None, changes)
                return now, events

        return await self.db.with_connection(run)

    async def log_page(self, video_id: str, before: int | None, limit: int) -> list[dict]:
        """Moderation actions on the video, newest first, with id < ``before``."""
        bound = NO_UPPER_BOUND if before is None else before
        rows = await self.db.fetch(LOG_PAGE_SQL, video_id, bound, limit)
        return [
            {
                "id": r[0],
                "video_id": video_id,
                "actor": r[1],
                "action": r[2],
                "target": r[3],
                "detail": json.loads(r[4]),
                "created_at": r[5],
            }
            for r in rows
        ]


async def _deletion_events(conn, video_id: str, seqs: list[int], actor: str) -> list[Event]:
    """The ``deleted`` events of comments just marked deleted; blank pins of them."""
    if not seqs:
        return []
    seqs = sorted(seqs)
    await conn.execute(BLANK_PINS_SQL, video_id, seqs, pinned_data(video_id, None))
    await conn.execute(CLEAR_PIN_SQL, video_id, seqs)
    data = [deleted_data(video_id, s) for s in seqs]
    return await _insert_events(conn, video_id, actor, "deleted", seqs, data)


async def _insert_events(
    conn, video_id: str, actor: str, kind: str, targets: list, data: list[str]
) -> list[Event]:
    head = await conn.fetchval(BUMP_SQL, video_id, len(targets))
    first = head - len(targets)
    rows = await conn.fetch(INSERT_EVENTS_SQL, video_id, first, actor, kind, targets, data)
    events = [Event(video_id, r[0], r[1], r[2], r[3], r[4]) for r in rows]
    events.sort(key=lambda e: e.seq)
    return events


async def _log(
    outbox: bool, conn, video_id: str, actor: str, action: str, target, detail: dict
) -> None:
    await conn.execute(LOG_SQL, video_id, actor, action, target, _dumps(detail))
    if outbox:
        kind, payload = moderation_payload(action, video_id, actor, target, detail)
        await write_outbox(conn, video_id, kind, payload)
