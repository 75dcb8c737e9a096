"""Prometheus metrics of one node. Reads statistics() snapshots; owns only counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.posts = Counter("livehub_posts", "Comments accepted (201)", registry=r)
        self.post_errors = Counter(
            "livehub_post_errors", "POSTs rejected, by status", ["status"], registry=r
        )
        self.delivered_total = Counter(
            "livehub_comments_delivered",
            "Comments handed to viewers (comments x viewers)",
            registry=r,
        )
        self.catchups = Counter(
            "livehub_viewer_catchups", "Viewer catch-ups read from Postgres", ["reason"], registry=r
        )
        self.post_latency = Histogram(
            "livehub_post_seconds",
            "POST handling time, commit included",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.batch_size = Histogram(
            "livehub_batch_size",
            "Comments per insert transaction",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.connections = Gauge("livehub_stream_connections", "Open streams", registry=r)
        self._sources = None
        r.register(_Snapshot(self))

    def bind(self, registry, bus, db) -> None:
        self._sources = (registry, bus, db)

    def delivered(self, video_id: str, comments: list, viewers: int) -> None:
        self.delivered_total.inc(len(comments) * viewers)

    def catchups_inc(self, reason: str) -> None:
        self.catchups.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Snapshot:
    """Gauges read from statistics() at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self):
        return []

    def collect(self):
        if self._m._sources is None:
            return
        registry, bus, db = self._m._sources
        rs = registry.statistics()
        bs = bus.statistics()
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
        ):
            yield GaugeMetricFamily(name, doc, value=value)
