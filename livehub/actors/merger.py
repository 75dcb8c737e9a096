"""Node-wide group commit: the batches of many videos' actors share one transaction.

Each actor already batches its own video's posts while one of its transactions is in
flight. Most videos are quiet, though, so at thousands of posts/s over hundreds of
videos nearly every post would be a transaction of its own, and the cost per
transaction (a round trip through the trio-asyncio bridge, asyncpg, a commit) would
dominate. The merger takes every batch queued while its transactions are in flight
and stores them in the next one (``PgCommentStore.insert_many``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NoReturn

import trio

from ..errors import StoreUnavailable
from ..model import Comment, Draft
from .messages import Reply

log = logging.getLogger("livehub.merger")

MAX_IN_FLIGHT = 4  # merged transactions at once (the pool has more connections)
MAX_ROWS = 2000  # comments per merged transaction


class InsertMerger:
    """``insert(video_id, drafts)`` as an actor's batcher calls it, merged."""

    def __init__(self, store) -> None:
        self._store = store
        self._queue: list[tuple[str, Sequence[Draft], Reply[list[Comment]]]] = []
        self._wakeup = trio.Event()
        self._in_flight = 0
        self.transactions = 0

    def submit(self, video_id: str, drafts: Sequence[Draft]) -> Reply[list[Comment]]:
        """Queue ``drafts`` (one video's batch) for the next merged transaction.

        The reply gets the stored comments (with their seqs), or StoreUnavailable
        when that transaction failed and nothing was stored. The write goes on even
        if the submitter goes away (its actor crashed): the reply still comes.
        """
        reply: Reply[list[Comment]] = Reply()
        self._queue.append((video_id, drafts, reply))
        self._wakeup.set()
        return reply

    async def insert(self, video_id: str, drafts: Sequence[Draft]) -> list[Comment]:
        """``submit`` and wait: the store's ``insert``, merged."""
        return await self.submit(video_id, drafts).wait()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            task_status.started(self)
            while True:
                while not self._queue or self._in_flight >= MAX_IN_FLIGHT:
                    self._wakeup = trio.Event()
                    await self._wakeup.wait()
                batch, rest, videos, rows = [], [], set(), 0
                for item in self._queue:
                    # One batch per video per transaction (an actor never has two in
                    # flight, but a merged result is keyed by video: be sure).
                    if item[0] in videos or (batch and rows + len(item[1]) > MAX_ROWS):
                        rest.append(item)
                        continue
                    batch.append(item)
                    videos.add(item[0])
                    rows += len(item[1])
                self._queue = rest
                self._in_flight += 1
                nursery.start_soon(self._write, batch)

    async def _write(self, batch: list[tuple[str, Sequence[Draft], Reply]]) -> None:
        try:
            stored = await self._store.insert_many([(v, d) for v, d, _ in batch])
        except StoreUnavailable as exc:
            for _, _, reply in batch:
                reply.fail(exc)
        except Exception:
            # A Postgres error other than "unavailable" (read-only standby, disk full,
            # a timeout): these posts fail with 503; the node and its viewers go on.
            log.exception("merged insert failed")
            for _, _, reply in batch:
                reply.fail(StoreUnavailable("the write failed; retry"))
        except BaseException:
            for _, _, reply in batch:
                reply.fail(StoreUnavailable("the write was interrupted; retry"))
            raise
        else:
            self.transactions += 1
            for video_id, _, reply in batch:
                reply.set(stored[video_id])
        finally:
            self._in_flight -= 1
            self._wakeup.set()
