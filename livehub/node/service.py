"""open_service: the nursery owning a node's pool, bus, and actor registry."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import trio

from livehub.actors.registry import Registry
from livehub.config import Settings, SettingsError
from livehub.core import clientaddr
from livehub.core.errors import StoreUnavailable
from livehub.core.model import Comment
from livehub.core.ratelimit import PostLimiter, SlowMode, TokenBucket, parse_per_video
from livehub.db.bridge import Database, open_database
from livehub.db.bus import PgBus
from livehub.db.migrate import migrate
from livehub.db.modstore import PgModerationStore
from livehub.db.store import PgCommentStore
from livehub.db.viewers import ViewerCounts
from livehub.identity.auth import TokenVerifier
from livehub.node.gate import Gate
from livehub.node.metrics import Metrics, Sources
from livehub.node.modcache import ModerationCache

log = logging.getLogger("livehub.node.service")

MIGRATE_RETRY_SECONDS = 30.0  # a node starting beside a restarting Postgres waits this long


@dataclass
class Service:
    settings: Settings
    db: Database
    store: PgCommentStore
    bus: PgBus
    registry: Registry
    metrics: Metrics
    gate: Gate
    limiter: PostLimiter
    viewers: ViewerCounts
    tokens: TokenVerifier
    moderation: ModerationCache
    modstore: PgModerationStore

    @property
    def node_id(self) -> str:
        return self.bus.node_id


def post_limiter(settings: Settings) -> PostLimiter:
    """The node's posting limits from settings (clock: time.monotonic).

    Raises:
        SettingsError: a limit does not make sense.
    """
    try:
        bucket = TokenBucket(settings.post_rate_per_second, settings.post_burst, time.monotonic)
        per_video = parse_per_video(settings.slow_mode_videos)  # checked here, at start
    except ValueError as exc:
        raise SettingsError(f"posting limits: {exc}") from None
    return PostLimiter(bucket, SlowMode(settings.slow_mode_seconds, per_video, time.monotonic))


class _ObservedBus:
    """The bus as the registry sees it, observing each committed batch's size."""

    def __init__(self, bus: PgBus, metrics: Metrics) -> None:
        self._bus = bus
        self._metrics = metrics

    async def listen(self, video_id: str) -> None:
        await self._bus.listen(video_id)

    def unlisten(self, video_id: str) -> None:
        self._bus.unlisten(video_id)

    def committed(self, video_id: str, comments: list[Comment]) -> None:
        self._metrics.committed(comments)
        self._bus.committed(video_id, comments)


@contextlib.asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """Connect, migrate (unless disabled), and run the bus and the registry.

    Resource handling: leaving the block cancels the actors and the bus, then closes
    the pool.
    """
    try:
        clientaddr.parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(f"LIVEHUB_TRUSTED_PROXIES: {exc}") from None
    if not settings.database_url:
        raise RuntimeError(
            "LIVEHUB_DATABASE_URL is not set (`livehub serve` starts an embedded database)"
        )
    tokens = TokenVerifier.from_settings(settings)  # a bad key setting fails before connecting
    async with open_database(
        settings.database_url,
        max_size=settings.max_db_connections,
        timeout_seconds=settings.db_command_timeout_seconds,
    ) as db:
        if settings.migrate_on_start:
            await _migrate_with_retry(db)
        store = PgCommentStore(db)
        metrics = Metrics()
        limiter = post_limiter(settings)
        gate = Gate(
            settings.max_streams, settings.overload_retry_seconds, settings.max_streams_per_client
        )
        bus = PgBus(db, settings.database_url, settings)
        viewers = ViewerCounts(
            db,
            gate,
            bus.node_id,
            settings.viewer_count_seconds,
            settings.viewer_count_ttl_seconds,
        )
        registry = Registry(
            store,
            settings,
            _ObservedBus(bus, metrics),
            streams=gate.streams_open,
            viewer_total=viewers.total,
            on_delivered=metrics.delivered,
        )
        modstore = PgModerationStore(db)
        moderation = ModerationCache(
            modstore,
            settings.moderation_refresh_seconds,
            limiter.slow.configured,
            settings.max_message_chars,
        )
        limiter.slow.override = moderation.slow_mode_override
        metrics.watch(
            Sources(registry, bus, db, gate, viewers, settings.max_db_connections, tokens.jwks)
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(registry.run)
            await nursery.start(bus.run, registry)
            await nursery.start(viewers.run)
            await nursery.start(tokens.run)  # JWKS refresh (started before the first fetch)
            await nursery.start(moderation.run)
            if metrics.multiprocess:
                nursery.start_soon(metrics.publish_forever)
            yield Service(
                settings,
                db,
                store,
                bus,
                registry,
                metrics,
                gate,
                limiter,
                viewers,
                tokens,
                moderation,
                modstore,
            )
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
