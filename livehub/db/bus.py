"""PgBus: the node's link to other nodes through Postgres LISTEN/NOTIFY.

- Notifier: after commits, the wake-ups this node owes are sent a few milliseconds
  later as one autocommit statement of ``pg_notify`` calls (never inside the insert
  transaction: a notifying commit takes a cluster-wide lock held until its commit is
  flushed, so every notifying commit in the database would queue behind the last).
- Listener: one dedicated connection LISTENing only to the channels of videos this
  node has actors for; it routes each wake-up to its actor. On connection loss it
  reconnects with backoff, re-LISTENs, and tells every actor to resync from the
  store, because notifications sent while it was down are gone.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

import asyncpg
import trio
import trio_asyncio

from livehub.config import Settings
from livehub.core.model import Comment
from livehub.core.wakeup import (
    WakeUp,
    channel_of,
    decode_wakeups,
    encode_wakeups,
    own_payload_head,
)
from livehub.db.bridge import Database

log = logging.getLogger("livehub.db.bus")

NOTIFY_SQL = (
    "SELECT pg_notify(c, p)"
    " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, p, o) ORDER BY o"
)
LISTEN_CONFIRM_SECONDS = 1.0  # an actor waits at most this for its LISTEN before loading
BACKOFF_MAX_SECONDS = 5.0


@dataclass(frozen=True)
class BusStatistics:
    connected: bool
    channels: int
    reconnects: int
    notifies_sent: int
    wakeups_received: int
    notify_failures: int
    notifications_received: int = 0  # every NOTIFY the LISTEN connection got (own too)
    payloads_decoded: int = 0  # those from other nodes, decoded (wake-ups_received in them)


class WakeUpReceiver(Protocol):
    """Where the bus hands what it hears (``actors.registry.Registry``)."""

    def notify_nowait(self, wake: WakeUp) -> None: ...

    def resync_all(self) -> None: ...


class PgBus:
    def __init__(
        self, db: Database, dsn: str, settings: Settings, node_id: str | None = None
    ) -> None:
        self._db = db
        self._dsn = dsn
        self._settings = settings
        self.node_id = node_id or secrets.token_hex(6)  # one id for all of a node's shards
        self._own_head = own_payload_head(self.node_id)
        self._receiver: WakeUpReceiver | None = None  # set by run()
        self._want: dict[str, int] = defaultdict(int)
        self._listening: set[str] = set()
        self._changed = trio.Event()
        self._applied = trio.Event()
        self._pending: dict[str, list[tuple[str, list[Comment]]]] = defaultdict(list)
        self._pending_event = trio.Event()
        self._connected = False
        self._reconnects = 0
        self._notifies_sent = 0
        self._wakeups_received = 0
        self._notify_failures = 0
        self._notifications_received = 0
        self._payloads_decoded = 0

    def statistics(self) -> BusStatistics:
        return BusStatistics(
            self._connected,
            len(self._listening),
            self._reconnects,
            self._notifies_sent,
            self._wakeups_received,
            self._notify_failures,
            self._notifications_received,
            self._payloads_decoded,
        )

    async def run(
        self, receiver: WakeUpReceiver, *, task_status=trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """LISTEN and NOTIFY until cancelled; wake-ups from other nodes go to
        ``receiver`` (the node's registry), and so does every reconnect."""
        self._receiver = receiver
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve_notifier)
            await nursery.start(self._serve_listener)
            task_status.started(self)

    # -- listening --
    def _channel(self, video_id: str) -> str:
        return channel_of(video_id, self._settings.notify_channels)

    async def listen(self, video_id: str) -> None:
        """Make sure this node hears ``video_id``'s wake-ups (waits briefly for LISTEN)."""
        channel = self._channel(video_id)
        self._want[channel] += 1
        if channel in self._listening or not self._connected:
            return
        self._changed.set()
        with trio.move_on_after(LISTEN_CONFIRM_SECONDS):
            while channel not in self._listening and self._connected:
                await self._applied.wait()

    def unlisten(self, video_id: str) -> None:
        channel = self._channel(video_id)
        self._want[channel] -= 1
        if self._want[channel] <= 0:
            del self._want[channel]
            self._changed.set()

    def _on_notification(self, conn, pid, channel, payload) -> None:  # trio thread
        self._notifications_received += 1
        if payload.startswith(self._own_head):
            return  # our own wake-up (every listener hears every NOTIFY): skip the decode
        try:
            node, wakeups = decode_wakeups(payload)
        except ValueError as exc:
            log.warning("ignoring wake-up on %s: %s", channel, exc)
            return
        if node == self.node_id:
            return
        self._payloads_decoded += 1
        for w in wakeups:
            self._wakeups_received += 1
            self._receiver.notify_nowait(w)

    async def _serve_listener(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        backoff = 0.1
        started = False

        def mark_started() -> None:
            nonlocal started, backoff
            backoff = 0.1
            if not started:
                started = True
                task_status.started()

        first = True
        while True:
            try:
                await self._listen_until_lost(mark_started, first)
            except Exception as exc:
                # Connection errors, Postgres errors, or a group of them out of the
                # LISTEN/UNLISTEN nursery: reconnect; the resync covers the gap.
                log.warning("bus: LISTEN connection failed: %r", exc)
            first = False
            mark_started()  # serve even while Postgres is down; we keep retrying
            self._connected = False
            self._listening.clear()
            self._applied.set()
            self._applied = trio.Event()
            await trio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

    async def _listen_until_lost(self, mark_started: Callable[[], None], first: bool) -> None:
        aio = self._db.loop
        conn = await trio_asyncio.aio_as_trio(asyncpg.connect, loop=aio)(
            self._dsn, timeout=self._settings.db_command_timeout_seconds
        )
        lost = trio.Event()
        conn.add_termination_listener(lambda c: lost.set())
        try:
            self._connected = True
            self._listening.clear()
            await self._apply(conn)
            if not first:
                self._reconnects += 1
                log.info("bus: reconnected; resyncing every actor")
            self._receiver.resync_all()  # anything sent while we were not listening is gone
            mark_started()
            while not lost.is_set():
                async with trio.open_nursery() as nursery:

                    async def wait_lost(scope=nursery.cancel_scope) -> None:
                        await lost.wait()
                        scope.cancel()

                    nursery.start_soon(wait_lost)
                    await self._changed.wait()
                    self._changed = trio.Event()
                    await self._apply(conn)
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                try:
                    await trio_asyncio.aio_as_trio(conn.close, loop=aio)(timeout=1)
                except Exception:
                    conn.terminate()

    async def _apply(self, conn) -> None:
        aio = self._db.loop
        for channel in list(self._want.keys() - self._listening):
            await trio_asyncio.aio_as_trio(conn.add_listener, loop=aio)(
                channel, self._on_notification
            )
            self._listening.add(channel)
        for channel in list(self._listening - self._want.keys()):
            await trio_asyncio.aio_as_trio(conn.remove_listener, loop=aio)(
                channel, self._on_notification
            )
            self._listening.discard(channel)
        self._applied.set()
        self._applied = trio.Event()

    # -- notifying --
    def committed(self, video_id: str, comments: list[Comment]) -> None:
        """Owe other nodes a wake-up for ``comments`` (sent within a few ms)."""
        self._pending[self._channel(video_id)].append((video_id, comments))
        self._pending_event.set()

    async def _serve_notifier(self) -> NoReturn:
        while True:
            await self._pending_event.wait()
            await trio.sleep(self._settings.notify_batch_seconds)
            self._pending_event = trio.Event()
            pending, self._pending = self._pending, defaultdict(list)
            channels: list[str] = []
            payloads: list[str] = []
            for channel, batches in pending.items():
                for payload in encode_wakeups(
                    self.node_id, batches, self._settings.notify_inline_max_bytes
                ):
                    channels.append(channel)
                    payloads.append(payload)
            try:
                await self._db.execute(NOTIFY_SQL, channels, payloads)
                self._notifies_sent += len(payloads)
            except Exception as exc:
                # Unavailable, a standby refusing, a full notify queue: receivers'
                # periodic counter check delivers these comments anyway.
                self._notify_failures += 1
                log.warning("bus: wake-up NOTIFY failed: %r", exc)
