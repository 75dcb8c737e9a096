"""WebhookSender: one task per node delivering webhook events at least once.

The events live in Postgres (``livehub/db/webhooks.py``): moderation actions in the
outbox, comments past each video's delivery cursor. Each round the sender claims a
batch (``FOR UPDATE SKIP LOCKED`` plus a lease, so several nodes share the work
without delivering the same rows at once), POSTs it as one signed request, and on a
2xx marks it delivered; on anything else it schedules the batch's next attempt with
exponential backoff. The same events keep the same delivery ids across attempts,
nodes and restarts.

Which videos to look at: those this node just committed comments to (``hint``, from
the batcher's commit callback: delivered within milliseconds), plus, every
``webhook_sweep_seconds``, every video with undelivered entries (what another node
left behind when it died, what a restart must finish).

Resource handling: ``run`` owns the HTTP client; a delivery cut by cancellation is
not marked either way and is delivered again once its lease ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NoReturn

import httpx
import trio

from livehub.config import Settings
from livehub.core import signing
from livehub.core.webhookwire import backoff_seconds, encode_batch
from livehub.db.webhooks import Claimed, PgWebhookStore
from livehub.node.hookmetrics import HookMetrics
from livehub.node.proxy import check_settings

log = logging.getLogger("livehub.node.webhooks")

STORE_RETRY_SECONDS = 1.0  # Postgres unavailable: wait this long before the next round


class WebhookSender:
    def __init__(
        self,
        store: PgWebhookStore,
        settings: Settings,
        metrics: HookMetrics,
        shard: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Raises SettingsError for bad settings (see ``proxy.check_settings``)."""
        check_settings(settings)
        self._store = store
        self._url = settings.webhook_url
        self._secret = settings.webhook_secret.encode("utf-8")
        self._timeout = settings.webhook_timeout_seconds
        self._base = settings.webhook_retry_base_seconds
        self._cap = settings.webhook_retry_max_seconds
        self._batch_max = max(1, settings.webhook_max_batch)
        self._poll = settings.webhook_poll_seconds
        self._sweep_every = settings.webhook_sweep_seconds
        # A claim outlives the request that delivers it, so a live node never loses
        # its rows to another; a dead node's rows come free after this.
        self._lease = 2 * self._timeout + 1.0
        self._metrics = metrics
        self._shard = shard  # the shard whose outbox and cursors this sender delivers
        self._clock = clock
        self._hints: set[str] = set()
        self._woken = trio.Event()

    def hint(self, video_id: str) -> None:
        """Comments were just committed to ``video_id`` on this node (no I/O)."""
        self._hints.add(video_id)
        self._woken.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with httpx.AsyncClient(limits=limits, timeout=self._timeout) as client:
            started = await self._start()  # before the node takes posts, when it can
            task_status.started(self)
            next_sweep = 0.0
            while True:
                try:
                    if not started:
                        started = await self._start()
                        continue
                    if trio.current_time() >= next_sweep:
                        videos, backlog = await self._store.sweep()
                        self._hints |= videos
                        self._metrics.set_backlog(self._shard, backlog)
                        next_sweep = trio.current_time() + self._sweep_every
                    busy = await self._round(client)
                except Exception:  # StoreUnavailable, a Postgres error: try again soon
                    log.warning("webhooks: delivery round failed", exc_info=True)
                    await trio.sleep(STORE_RETRY_SECONDS)
                    continue
                if not busy:
                    with trio.move_on_after(self._poll):
                        await self._woken.wait()
                    self._woken = trio.Event()

    async def _start(self) -> bool:
        try:
            if await self._store.start():
                log.info("webhooks: first start; cursors begin at each video's head")
            return True
        except Exception:  # Postgres unavailable: the loop tries again
            log.warning("webhooks: cannot start yet", exc_info=True)
            await trio.sleep(STORE_RETRY_SECONDS)
            return False

    async def _round(self, client: httpx.AsyncClient) -> bool:
        """Deliver one batch; True when there may be more right away."""
        if self._hints:
            self._hints &= await self._store.pending(list(self._hints))
        claimed = await self._store.claim(list(self._hints), self._batch_max, self._lease)
        if claimed.empty:
            return False
        if not claimed.events:  # only moderation events past the cursors: nothing to send
            await self._store.delivered(claimed)
            return True
        outcome = await self._post(client, claimed)
        self._metrics.webhook_requests.labels(outcome).inc()
        if outcome == "ok":
            await self._store.delivered(claimed)
            for event in claimed.events:
                self._metrics.webhook_events.labels(event.type).inc()
            return True
        retry_in = backoff_seconds(claimed.attempts + 1, self._base, self._cap)
        await self._store.failed(claimed, retry_in)
        self._metrics.webhook_retries.inc(len(claimed.events))
        log.warning(
            "webhooks: delivery of %s events failed (%s); next attempt in %.1fs",
            len(claimed.events),
            outcome,
            retry_in,
        )
        return True

    async def _post(self, client: httpx.AsyncClient, claimed: Claimed) -> str:
        body = encode_batch(claimed.events)
        headers = {
            "content-type": "application/json",
            signing.SIGNATURE_HEADER: signing.sign(self._secret, body, int(self._clock())),
        }
        with trio.move_on_after(self._timeout):
            try:
                resp = await client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("webhooks: %s: %s", type(exc).__name__, exc)
                return "error"
            return "ok" if 200 <= resp.status_code < 300 else "status"
        return "timeout"
