"""open_service: the nursery owning a node's pool, bus, and actor registry."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import trio

from .actors.registry import Registry
from .bus import PgBus
from .config import Settings
from .errors import StoreUnavailable
from .metrics import Metrics
from .migrate import migrate
from .pg import Database, open_database
from .store import PgCommentStore

log = logging.getLogger("livehub.service")

MIGRATE_RETRY_SECONDS = 30.0  # a node starting beside a restarting Postgres waits this long


@dataclass
class Service:
    settings: Settings
    db: Database
    store: PgCommentStore
    bus: PgBus
    registry: Registry
    metrics: Metrics


@contextlib.asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """Connect, migrate (unless disabled), and run the bus and the registry.

    Resource handling: leaving the block cancels the actors and the bus, then closes
    the pool.
    """
    if not settings.database_url:
        raise RuntimeError(
            "LIVEHUB_DATABASE_URL is not set (`livehub serve` starts an embedded database)"
        )
    async with open_database(
        settings.database_url,
        max_size=settings.db_pool_max,
        timeout_seconds=settings.db_command_timeout_seconds,
    ) as db:
        if settings.migrate_on_start:
            await _migrate_with_retry(db)
        store = PgCommentStore(db)
        metrics = Metrics()
        bus = PgBus(db, settings.database_url, settings)
        registry = Registry(store, settings, bus, on_delivered=metrics.delivered)
        bus.attach(registry.notify_nowait, registry.resync_all)
        metrics.bind(registry, bus, db)
        async with trio.open_nursery() as nursery:
            await nursery.start(registry.run)
            await nursery.start(bus.run)
            yield Service(settings, db, store, bus, registry, metrics)
            nursery.cancel_scope.cancel()


async def _migrate_with_retry(db: Database) -> None:
    with trio.move_on_after(MIGRATE_RETRY_SECONDS):
        while True:
            try:
                applied = await migrate(db)
            except StoreUnavailable as exc:
                log.warning("migrate: %s; retrying", exc.message)
                await trio.sleep(0.5)
                continue
            if applied:
                log.info("migrate: applied %s", ", ".join(applied))
            return
    raise StoreUnavailable("could not reach the database to apply migrations")
