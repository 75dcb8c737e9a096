"""Prometheus metrics of the publish proxy and the webhooks (docs/OPERATIONS.md).

Plain counters, histograms and one gauge in the node's registry
(``Metrics.registry``), so they work in multiprocess mode like the others: counters
and histograms are summed over workers; the backlog gauge is the same value seen by
every worker (it is read from Postgres), so the node reports the freshest maximum.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PROXY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5)


class HookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.proxy_requests = Counter(
            "livehub_proxy_requests",
            "Publish proxy requests, by outcome: ok, timeout, error (connection),"
            " status (not 2xx), invalid (an answer livehub cannot use)",
            ["outcome"],
            registry=r,
        )
        self.proxy_posts = Counter(
            "livehub_proxy_posts",
            "Posts reviewed by the publish proxy, by verdict: accept, modify, reject,"
            " failed_open (stored as posted), failed_closed (503)",
            ["verdict"],
            registry=r,
        )
        self.proxy_latency = Histogram(
            "livehub_proxy_seconds",
            "Publish proxy request time, whatever the outcome",
            buckets=PROXY_BUCKETS,
            registry=r,
        )
        self.proxy_batch = Histogram(
            "livehub_proxy_batch_size",
            "Posts per publish proxy request",
            buckets=(1, 2, 5, 10, 20, 50, 100),
            registry=r,
        )
        self.webhook_requests = Counter(
            "livehub_webhook_requests",
            "Webhook delivery requests, by outcome: ok, timeout, error, status (not 2xx)",
            ["outcome"],
            registry=r,
        )
        self.webhook_events = Counter(
            "livehub_webhook_events",
            "Webhook events acknowledged by the endpoint, by type",
            ["type"],
            registry=r,
        )
        self.webhook_retries = Counter(
            "livehub_webhook_retries",
            "Webhook events scheduled for another attempt after a failed delivery",
            registry=r,
        )
        self.webhook_backlog = Gauge(
            "livehub_webhook_backlog",
            "Webhook events not yet delivered (moderation outbox rows plus stream"
            " entries past the delivery cursors), as of this node's last sweep",
            registry=r,
            multiprocess_mode="livemax",
        )
        self._backlogs: dict[int, int] = {}

    def set_backlog(self, shard: int, events: int) -> None:
        """One shard's backlog as its sender last counted it; the gauge is the sum."""
        self._backlogs[shard] = events
        self.webhook_backlog.set(sum(self._backlogs.values()))
