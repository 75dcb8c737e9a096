"""open_service: the nursery owning a node's pool, bus, and actor registry."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import trio

from livehub.actors.registry import Registry
from livehub.actors.shardmerger import ShardedMerger
from livehub.config import Settings, SettingsError
from livehub.core import clientaddr
from livehub.core.model import Comment
from livehub.core.ratelimit import PostLimiter, SlowMode, TokenBucket, parse_per_video
from livehub.db.routing import (
    Router,
    ShardedBus,
    ShardedCommentStore,
    ShardedModerationStore,
    ShardedPools,
    ShardedViewerCounts,
)
from livehub.db.shards import (
    MIGRATE_RETRY_SECONDS,
    Shard,
    migrate_shards,
    open_shards,
    ping_shards,
)
from livehub.db.webhooks import PgWebhookStore
from livehub.identity.auth import TokenVerifier
from livehub.node.gate import Gate
from livehub.node.hookmetrics import HookMetrics
from livehub.node.metrics import Metrics, Sources
from livehub.node.modcache import ModerationCache
from livehub.node.modrouting import ShardedModerationCache
from livehub.node.proxy import PublishProxy
from livehub.node.proxy import check_settings as check_integration_settings
from livehub.node.webhooks import WebhookSender

log = logging.getLogger("livehub.node.service")


@dataclass
class Service:
    """A node's services. Postgres-backed ones route each video to its shard
    (livehub/db/routing.py); ``shards`` holds each shard's own pool, store and bus."""

    settings: Settings
    db: ShardedPools
    store: ShardedCommentStore
    bus: ShardedBus
    registry: Registry
    metrics: Metrics
    gate: Gate
    limiter: PostLimiter
    viewers: ShardedViewerCounts
    tokens: TokenVerifier
    moderation: ShardedModerationCache
    modstore: ShardedModerationStore
    shards: list[Shard]
    # The publish proxy (None: LIVEHUB_PUBLISH_PROXY_URL unset; posts skip it).
    proxy: PublishProxy | None = None
    # The webhook delivery tasks, one per shard (empty: LIVEHUB_WEBHOOK_URL unset).
    webhooks: list[WebhookSender] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return self.bus.node_id

    async def shards_answering(self) -> list[bool]:
        """Which shards answer within ``ready_timeout_seconds`` (asked at once)."""
        return await ping_shards(self.shards, self.settings.ready_timeout_seconds)


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
    """The bus as the registry sees it, observing each committed batch's size (and
    telling the webhook sender of the video's shard that it has new comments)."""

    def __init__(self, bus: ShardedBus, metrics: Metrics, route: Router) -> None:
        self._bus = bus
        self._metrics = metrics
        self._route = route
        self.webhooks: list[WebhookSender] = []

    async def listen(self, video_id: str) -> None:
        await self._bus.listen(video_id)

    def unlisten(self, video_id: str) -> None:
        self._bus.unlisten(video_id)

    def committed(self, video_id: str, comments: list[Comment]) -> None:
        self._metrics.committed(comments)
        self._bus.committed(video_id, comments)
        if self.webhooks:
            self.webhooks[self._route(video_id)].hint(video_id)


def check_settings(settings: Settings) -> TokenVerifier:
    """Everything about ``settings`` that can be wrong before connecting; returns the
    token verifier they make. ``livehub serve`` calls it before starting workers (a
    worker that cannot start would only be restarted), every service at its start.

    Raises:
        SettingsError: what is wrong, naming the variable.
    """
    try:
        clientaddr.parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(f"LIVEHUB_TRUSTED_PROXIES: {exc}") from None
    post_limiter(settings)  # the posting limits and LIVEHUB_SLOW_MODE_VIDEOS
    check_integration_settings(settings)  # publish proxy, webhooks
    return TokenVerifier.from_settings(settings)  # a bad key setting


@contextlib.asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """Connect, migrate (unless disabled), and run the bus and the registry.

    Resource handling: leaving the block cancels the actors and the bus, then closes
    the pool.
    """
    tokens = check_settings(settings)
    dsns = settings.database_dsns()
    if not dsns:
        raise RuntimeError(
            "LIVEHUB_DATABASE_URL is not set (`livehub serve` starts an embedded database)"
        )
    node_id = secrets.token_hex(6)
    async with open_shards(dsns, settings, node_id) as shards:
        if settings.migrate_on_start:
            await migrate_shards(shards, MIGRATE_RETRY_SECONDS)
        route = Router(len(shards))
        store = ShardedCommentStore([s.store for s in shards], route)
        metrics = Metrics()
        limiter = post_limiter(settings)
        gate = Gate(
            settings.max_streams, settings.overload_retry_seconds, settings.max_streams_per_client
        )
        bus = ShardedBus([s.bus for s in shards], route)
        observed = _ObservedBus(bus, metrics, route)
        viewers = ShardedViewerCounts(
            shards,
            gate,
            node_id,
            settings.viewer_count_seconds,
            settings.viewer_count_ttl_seconds,
        )
        registry = Registry(
            store,
            settings,
            observed,
            streams=gate.streams_open,
            viewer_total=viewers.total,
            on_delivered=metrics.delivered,
            merger=ShardedMerger([s.store for s in shards], route, settings),
        )
        modstore = ShardedModerationStore([s.modstore for s in shards], route)
        moderation = ShardedModerationCache(
            [
                ModerationCache(
                    s.modstore,
                    settings.moderation_refresh_seconds,
                    limiter.slow.configured,
                    settings.max_message_chars,
                )
                for s in shards
            ],
            route,
        )
        limiter.slow.override = moderation.slow_mode_override
        hook_metrics = HookMetrics(metrics.registry)
        proxy = None
        if settings.publish_proxy_url:
            proxy = PublishProxy(settings, hook_metrics, moderation.max_message_chars)
        webhooks = []
        if settings.webhook_url:
            for shard in shards:
                shard.modstore.webhooks = True  # actions write their event to the outbox
                webhooks.append(
                    WebhookSender(PgWebhookStore(shard.db), settings, hook_metrics, shard.index)
                )
            observed.webhooks = webhooks
        pool_max = settings.max_db_connections * len(shards)
        db = ShardedPools(shards)
        metrics.watch(Sources(registry, bus, db, gate, viewers, pool_max, tokens.jwks))
        async with trio.open_nursery() as nursery:
            await nursery.start(registry.run)
            await nursery.start(bus.run, registry)
            await nursery.start(viewers.run)
            await nursery.start(tokens.run)  # JWKS refresh (started before the first fetch)
            await nursery.start(moderation.run)
            if proxy is not None:
                await nursery.start(proxy.run)
            for sender in webhooks:
                await nursery.start(sender.run)
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
                shards,
                proxy,
                webhooks,
            )
            nursery.cancel_scope.cancel()
