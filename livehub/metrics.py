"""Prometheus metrics of one node. Reads statistics() snapshots; owns only counters
and histograms it is handed events for (docs/OPERATIONS.md lists them)."""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.posts = Counter("livehub_posts", "Comments accepted (201)", registry=r)
        self.post_errors = Counter(
            "livehub_post_errors", "POSTs rejected, by status", ["status"], registry=r
        )
        self.posts_limited = Counter(
            "livehub_posts_limited",
            "Posts refused by a limit (429), by reason: rate, slow_mode",
            ["reason"],
            registry=r,
        )
        self.delivered_total = Counter(
            "livehub_comments_delivered",
            "Comments handed to viewers (comments x viewers)",
            registry=r,
        )
        self.catchups = Counter(
            "livehub_viewer_catchups",
            "Viewer catch-ups read from Postgres, by reason (lagged: its queue was"
            " dropped because it fell behind; resume: a reconnect past the ring)",
            ["reason"],
            registry=r,
        )
        self.post_latency = Histogram(
            "livehub_post_seconds",
            "Post handling time (HTTP and WebSocket), commit included",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_latency = Histogram(
            "livehub_delivery_seconds",
            "From a comment's created_at (its transaction's start, Postgres clock) to its"
            " hand-off to this node's viewers; oldest comment of each delivered batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "livehub_batch_size",
            "Comments per insert transaction (group commit)",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.moderation = Counter(
            "livehub_moderation_actions",
            "Moderation actions taken on this node, by action: delete, ban, unban,"
            " settings, pin, unpin",
            ["action"],
            registry=r,
        )
        self.connections = Gauge("livehub_stream_connections", "Open streams", registry=r)
        self._sources: tuple | None = None
        r.register(_Snapshot(self))

    def bind(self, registry, bus, db, gate, viewers, pool_max: int) -> None:
        """The objects whose statistics() are read at scrape time."""
        self._sources = (registry, bus, db, gate, viewers, pool_max)

    def delivered(self, video_id: str, comments: list, viewers: int) -> None:
        self.delivered_total.inc(len(comments) * viewers)
        if viewers and comments:
            created = _epoch(comments[0].created_at)
            if created is not None:
                self.delivery_latency.observe(max(0.0, time.time() - created))

    def committed(self, comments: list) -> None:
        self.batch_size.observe(len(comments))

    def catchups_inc(self, reason: str) -> None:
        self.catchups.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _epoch(created_at: str) -> float | None:
    try:
        return datetime.fromisoformat(created_at).timestamp()
    except (ValueError, TypeError):
        return None


class _Snapshot:
    """Gauges (and counters kept by others) read from statistics() at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self):
        return []

    def collect(self):
        if self._m._sources is None:
            return
        registry, bus, db, gate, viewers, pool_max = self._m._sources
        rs = registry.statistics()
        bs = bus.statistics()
        gs = gate.statistics()
        vs = viewers.statistics()
        size, idle = db.statistics()
        for name, doc, value in (
            ("livehub_live_videos", "Videos with an actor on this node", rs.actors),
            ("livehub_viewers", "Viewers subscribed on this node", rs.viewers),
            ("livehub_actor_restarts", "Actor crashes restarted", rs.restarts),
            ("livehub_bus_connected", "1 when the LISTEN connection is up", int(bs.connected)),
            ("livehub_bus_channels", "Channels LISTENed to", bs.channels),
            ("livehub_bus_reconnects", "LISTEN reconnections", bs.reconnects),
            ("livehub_bus_notifies_sent", "Wake-up payloads sent", bs.notifies_sent),
            ("livehub_bus_wakeups_received", "Wake-ups received", bs.wakeups_received),
            ("livehub_db_pool_size", "Pool connections open", size),
            ("livehub_db_pool_idle", "Pool connections idle", idle),
            ("livehub_db_pool_in_use", "Pool connections running a query", size - idle),
            ("livehub_db_pool_max", "Pool size limit (LIVEHUB_DB_POOL_MAX)", pool_max),
            ("livehub_streams_open", "SSE + WebSocket streams holding a slot", gs.streams),
            ("livehub_stream_slots", "Stream cap (LIVEHUB_MAX_STREAMS)", gate.max_streams),
            ("livehub_posts_in_flight", "Posts accepted, not yet answered", gs.posts_in_flight),
            ("livehub_draining", "1 while the node shuts down", int(gs.draining)),
            (
                "livehub_videos_counted",
                "Videos whose viewer count this node published last round",
                vs.videos_published,
            ),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        refused = CounterMetricFamily(
            "livehub_requests_refused",
            "Streams and posts refused with 503, by reason: full, draining",
            labels=["reason"],
        )
        refused.add_metric(["full"], gs.refused_full)
        refused.add_metric(["draining"], gs.refused_draining)
        yield refused
        for name, doc, value in (
            ("livehub_bus_notify_failures", "Wake-up NOTIFYs that failed", bs.notify_failures),
            (
                "livehub_viewer_count_failures",
                "Viewer count publish rounds that failed",
                vs.publish_failures,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
