"""Prometheus metrics of one node. Reads statistics() snapshots; owns only counters
and histograms it is handed events for (docs/OPERATIONS.md lists them).

One process (plain Hypercorn, the in-process test server): the snapshot gauges are
read from the components' ``statistics()`` at scrape time.

Several workers on one port (``livehub serve``, which sets ``PROMETHEUS_MULTIPROC_DIR``
to a directory of its own): every value lives in that directory
(prometheus-client's multiprocess mode) and whichever worker takes the scrape
reports the node's totals. Counters and histograms are summed over every worker that
ever ran, so they never go backwards when a worker dies or is restarted. Snapshot
gauges are written there by each worker every ``PUBLISH_SECONDS`` (and by the
scraping worker just before it answers) and summed over the live workers, except
``livehub_bus_connected`` (the minimum: 0 when any worker's LISTEN link is down) and
``livehub_draining`` (the maximum); counters read from snapshots are written as
increments.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
PUBLISH_SECONDS = 1.0  # how stale another worker's snapshot gauges may be in a scrape
# How the workers' values of a snapshot gauge add up to the node's (multiprocess).
GAUGE_MODES = {
    "livehub_bus_connected": "livemin",
    "livehub_draining": "livemax",
    "livehub_jwks_healthy": "livemin",
}
DEFAULT_GAUGE_MODE = "livesum"

# A `_created` series per counter and histogram only clutters every scrape.
disable_created_metrics()


def multiprocess() -> bool:
    """True when values live in ``PROMETHEUS_MULTIPROC_DIR`` (``livehub serve``)."""
    return bool(values.ValueClass._multiprocess) and bool(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    )


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
        self._sources: Sources | None = None
        self.multiprocess = multiprocess()
        if self.multiprocess:
            self._published = _Published()
            self._node = CollectorRegistry()
            MultiProcessCollector(self._node)
        else:
            r.register(_Snapshot(self))

    def watch(self, sources: Sources) -> None:
        """The components whose statistics() the snapshot gauges read (once, when the
        node's service is assembled: they are built after the counters they feed)."""
        self._sources = sources

    def readings(self) -> tuple[list, list]:
        """The snapshot gauges and counters now (empty before :meth:`watch`)."""
        return ([], []) if self._sources is None else _readings(self._sources)

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
        if self.multiprocess:
            self.publish()
            return generate_latest(self._node)
        return generate_latest(self.registry)

    def publish(self) -> None:
        """Write this worker's snapshot values to the shared directory (multiprocess)."""
        self._published.write(*self.readings())

    async def publish_forever(self) -> NoReturn:
        """Keep this worker's part of the node's snapshot gauges fresh (multiprocess)."""
        while True:
            self.publish()
            await trio.sleep(PUBLISH_SECONDS)


def _epoch(created_at: str) -> float | None:
    try:
        return datetime.fromisoformat(created_at).timestamp()
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Sources:
    """What the snapshot gauges read (``jwks``: the identity provider's key set, when
    tokens are checked against one)."""

    registry: object
    bus: object
    db: object
    gate: object
    viewers: object
    pool_max: int
    jwks: object | None = None


def _readings(sources: Sources) -> tuple[list, list]:
    """The snapshot values: ``[(name, doc, value)]`` of gauges and
    ``[(name, doc, label, {label_value: value})]`` of counters."""
    registry, bus, db, gate, viewers = (
        sources.registry,
        sources.bus,
        sources.db,
        sources.gate,
        sources.viewers,
    )
    pool_max, jwks = sources.pool_max, sources.jwks
    rs = registry.statistics()
    bs = bus.statistics()
    gs = gate.statistics()
    vs = viewers.statistics()
    size, idle = db.statistics()
    gauges = [
        ("livehub_live_videos", "Videos with an actor on this node", rs.actors),
        ("livehub_viewers", "Viewers subscribed to this node's actors", rs.viewers),
        ("livehub_actor_restarts", "Actor crashes restarted", rs.restarts),
        ("livehub_bus_connected", "1 when the LISTEN connection is up", int(bs.connected)),
        ("livehub_bus_channels", "Channels LISTENed to", bs.channels),
        ("livehub_bus_reconnects", "LISTEN reconnections", bs.reconnects),
        ("livehub_bus_notifies_sent", "Wake-up payloads sent", bs.notifies_sent),
        ("livehub_bus_wakeups_received", "Wake-ups received", bs.wakeups_received),
        (
            "livehub_bus_notifications_received",
            "NOTIFYs the LISTEN connections got (this node's own included)",
            bs.notifications_received,
        ),
        (
            "livehub_bus_payloads_decoded",
            "Wake-up payloads from other nodes decoded",
            bs.payloads_decoded,
        ),
        ("livehub_db_pool_size", "Pool connections open", size),
        ("livehub_db_pool_idle", "Pool connections idle", idle),
        ("livehub_db_pool_in_use", "Pool connections running a query", size - idle),
        ("livehub_db_pool_max", "Pool size limit (LIVEHUB_MAX_DB_CONNECTIONS)", pool_max),
        ("livehub_streams_open", "SSE + WebSocket streams holding a slot", gs.streams),
        ("livehub_stream_slots", "Stream cap (LIVEHUB_MAX_STREAMS)", gate.max_streams),
        ("livehub_posts_in_flight", "Posts accepted, not yet answered", gs.posts_in_flight),
        ("livehub_draining", "1 while the node shuts down", int(gs.draining)),
        (
            "livehub_videos_counted",
            "Videos whose viewer count this node published last round",
            vs.videos_published,
        ),
    ]
    counters = [
        (
            "livehub_requests_refused",
            "Streams and posts refused, by reason: full, draining (503), client (429:"
            " a client over LIVEHUB_MAX_STREAMS_PER_CLIENT)",
            "reason",
            {"full": gs.refused_full, "draining": gs.refused_draining, "client": gs.refused_client},
        ),
        (
            "livehub_bus_notify_failures",
            "Wake-up NOTIFYs that failed",
            None,
            {None: bs.notify_failures},
        ),
        (
            "livehub_viewer_count_failures",
            "Viewer count publish rounds that failed",
            None,
            {None: vs.publish_failures},
        ),
    ]
    if jwks is not None:
        js = jwks.statistics()
        gauges.append(("livehub_jwks_keys", "Signing keys held from the JWKS", js.keys))
        gauges.append(
            ("livehub_jwks_healthy", "1 when the last JWKS fetch succeeded", int(js.healthy))
        )
        counters.append(
            ("livehub_jwks_fetches", "JWKS fetches that succeeded", None, {None: js.fetches})
        )
        counters.append(
            ("livehub_jwks_failures", "JWKS fetches that failed", None, {None: js.failures})
        )
    return gauges, counters


class _Snapshot:
    """Gauges (and counters kept by others) read from statistics() at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self):
        return []

    def collect(self):
        gauges, counters = self._m.readings()
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        for name, doc, label, by_label in counters:
            family = CounterMetricFamily(name, doc, labels=[label] if label else None)
            for label_value, value in by_label.items():
                family.add_metric([label_value] if label else [], value)
            yield family


class _Published:
    """This worker's snapshot values as multiprocess gauges and counters (created on
    first use); a snapshot counter is written as its increase since the last write."""

    def __init__(self) -> None:
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._last: dict[tuple[str, object], float] = {}

    def write(self, gauges: list, counters: list) -> None:
        for name, doc, value in gauges:
            gauge = self._gauges.get(name)
            if gauge is None:
                mode = GAUGE_MODES.get(name, DEFAULT_GAUGE_MODE)
                gauge = self._gauges[name] = Gauge(name, doc, registry=None, multiprocess_mode=mode)
            gauge.set(value)
        for name, doc, label, by_label in counters:
            counter = self._counters.get(name)
            if counter is None:
                labels = [label] if label else []
                counter = self._counters[name] = Counter(name, doc, labels, registry=None)
            for label_value, value in by_label.items():
                child = counter.labels(label_value) if label else counter  # the series exists
                grown = value - self._last.get((name, label_value), 0)
                if grown > 0:
                    child.inc(grown)
                    self._last[(name, label_value)] = value
