"""A node's shards: one pool, one store, one moderation store and one bus (its own
LISTEN connection) per Postgres instance listed in ``LIVEHUB_DATABASE_URLS``.

Which shard holds a video is ``livehub.core.shards.shard_of`` (pure);
``LOGICAL_SHARD_SQL`` is the same function in SQL, for resharding (a publication's
row filter) and for checking where rows belong.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import trio

from livehub.config import Settings
from livehub.core.errors import StoreUnavailable
from livehub.core.shards import LOGICAL_SHARDS
from livehub.db.bridge import Database, open_database, open_loop
from livehub.db.bus import PgBus
from livehub.db.migrate import migrate
from livehub.db.modstore import PgModerationStore
from livehub.db.store import PgCommentStore

log = logging.getLogger("livehub.db.shards")

# livehub.core.shards.logical_shard in SQL. 4096 divides 2**32, so the first 4 bytes
# of the md5 mod 4096 are the low 12 bits of the 4th and 3rd bytes. Columns,
# operators and immutable built-ins only, so it is allowed in a publication's row
# filter (``CREATE PUBLICATION ... WHERE (...)``, docs/OPERATIONS.md, Resharding).
LOGICAL_SHARD_SQL = (
    "((get_byte(decode(md5(video_id), 'hex'), 2) % 16) * 256"
    " + get_byte(decode(md5(video_id), 'hex'), 3))"
)
assert LOGICAL_SHARDS == 4096  # the expression above is for 4096 logical shards

MIGRATE_RETRY_SECONDS = 30.0  # a node starting beside a restarting Postgres waits this long


@dataclass
class Shard:
    """Everything one node holds for one Postgres instance."""

    index: int
    dsn: str
    db: Database
    store: PgCommentStore
    modstore: PgModerationStore
    bus: PgBus

    async def ping(self) -> None:
        """Raises StoreUnavailable when this shard does not answer."""
        await self.store.ping()


@contextlib.asynccontextmanager
async def open_shards(
    dsns: Sequence[str], settings: Settings, node_id: str
) -> AsyncIterator[list[Shard]]:
    """Open a pool per DSN (lazily connecting: a shard that is down does not stop the
    node) and build each shard's store and bus; the buses are not running yet.

    Resource handling: every pool is closed on exit, in reverse order.
    """
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(open_loop())  # one loop for every shard's pool
        shards = []
        for index, dsn in enumerate(dsns):
            db = await stack.enter_async_context(
                open_database(
                    dsn,
                    max_size=settings.max_db_connections,
                    timeout_seconds=settings.db_command_timeout_seconds,
                )
            )
            bus = PgBus(db, dsn, settings, node_id=node_id)
            shards.append(Shard(index, dsn, db, PgCommentStore(db), PgModerationStore(db), bus))
        yield shards


async def migrate_shards(shards: Sequence[Shard], retry_seconds: float = 0.0) -> list[list[str]]:
    """Migrate every shard (concurrently); returns each shard's applied migrations.

    Raises:
        StoreUnavailable: a shard could not be reached within ``retry_seconds``.
    """
    applied: list[list[str]] = [[] for _ in shards]
    failed: list[str] = []

    async def one(shard: Shard) -> None:
        with trio.move_on_after(retry_seconds if retry_seconds > 0 else math.inf):
            while True:
                try:
                    applied[shard.index] = await migrate(shard.db)
                    return
                except StoreUnavailable as exc:
                    if retry_seconds <= 0:
                        failed.append(f"shard {shard.index}: {exc.message}")
                        return
                    log.warning("migrate shard %d: %s; retrying", shard.index, exc.message)
                    await trio.sleep(0.5)
        failed.append(f"shard {shard.index}: could not reach it to apply migrations")

    async with trio.open_nursery() as nursery:
        for shard in shards:
            nursery.start_soon(one, shard)
    if failed:
        raise StoreUnavailable("; ".join(sorted(failed)))
    return applied


async def ping_shards(shards: Sequence[Shard], timeout_seconds: float) -> list[bool]:
    """Which shards answer ``SELECT 1`` within ``timeout_seconds`` (asked at once)."""
    answered = [False] * len(shards)

    async def one(shard: Shard) -> None:
        with trio.move_on_after(timeout_seconds):
            try:
                await shard.ping()
                answered[shard.index] = True
            except StoreUnavailable:
                pass

    async with trio.open_nursery() as nursery:
        for shard in shards:
            nursery.start_soon(one, shard)
    return answered
