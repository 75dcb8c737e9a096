"""Node-wide group commit: the batches of many videos' actors share one transaction.

Each actor already batches its own video's posts while one of its transactions is in
flight. Most videos are quiet, though, so at thousands of posts/s over hundreds of
videos nearly every post would be a transaction of its own, and the cost per
transaction (a round trip through the trio-asyncio bridge, asyncpg, a commit) would
dominate. The merger takes every batch queued while its transactions are in flight
and stores them in the next one (``PgCommentStore.insert_many``).

One bad row never fails the others: a draft the store cannot take is refused
(:class:`Unstorable`, 422) before the insert, and when Postgres refuses a merged
insert's data anyway, the rows are split in halves and retried until the offending
ones are found (a few extra transactions, only then); every other post is stored once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NoReturn

import trio

from livehub.actors.messages import Reply
from livehub.actors.ports import CommentStore, Result
from livehub.core.errors import LivehubError, StoreUnavailable, Unstorable
from livehub.core.model import Draft
from livehub.core.validate import check_storable

Row = tuple[int, int]  # (index of the batch in the transaction, index of the draft)

log = logging.getLogger("livehub.merger")

MAX_ROWS = 2000  # comments per merged transaction


class InsertMerger:
    """The node's :class:`~livehub.actors.ports.Inserter`: actors' batches, merged.

    ``merge=False`` (``LIVEHUB_MAX_BATCH=1``, the unbatched baseline) stores each batch
    in a transaction of its own, up to ``max_in_flight`` at once; the writes still
    outlive the actors that submitted them.
    """

    def __init__(self, store: CommentStore, merge: bool = True, max_in_flight: int = 4) -> None:
        self._store = store
        self._merge = merge
        self._max_in_flight = max_in_flight
        self._queue: list[tuple[str, Sequence[Draft], Reply[list[Result]]]] = []
        self._wakeup = trio.Event()
        self._in_flight = 0
        self.transactions = 0

    def submit(self, video_id: str, drafts: Sequence[Draft]) -> Reply[list[Result]]:
        """Queue ``drafts`` (one video's batch) for the next merged transaction.

        The reply gets one result per draft, in order: the stored comment (with its
        seq), or the error that draft's post gets (:class:`Unstorable`: this draft
        cannot be stored; :class:`StoreUnavailable`: it was not stored, retry). The
        write goes on even if the submitter goes away (its actor crashed): the reply
        still comes.
        """
        reply: Reply[list[Result]] = Reply()
        self._queue.append((video_id, drafts, reply))
        self._wakeup.set()
        return reply

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            task_status.started(self)
            while True:
                while not self._queue or self._in_flight >= self._max_in_flight:
                    self._wakeup = trio.Event()
                    await self._wakeup.wait()
                batch, rest, videos, rows = [], [], set(), 0
                for item in self._queue:
                    # One batch per video per transaction (an actor never has two in
                    # flight, but a merged result is keyed by video: be sure).
                    if item[0] in videos or (
                        batch and (not self._merge or rows + len(item[1]) > MAX_ROWS)
                    ):
                        rest.append(item)
                        continue
                    batch.append(item)
                    videos.add(item[0])
                    rows += len(item[1])
                self._queue = rest
                self._in_flight += 1
                nursery.start_soon(self._write, batch)

    async def _write(self, batch: list[tuple[str, Sequence[Draft], Reply]]) -> None:
        results: list[list[Result | None]] = [[None] * len(d) for _, d, _ in batch]
        try:
            rows = []
            for b, (video_id, drafts, _) in enumerate(batch):
                for i, draft in enumerate(drafts):
                    try:
                        check_storable(video_id, draft)
                    except Unstorable as exc:
                        results[b][i] = exc
                        continue
                    rows.append((b, i))
            await self._insert(batch, rows, results)
        finally:
            # Whatever happened (even a cancellation), every post gets an answer.
            interrupted = StoreUnavailable("the write was interrupted; retry")
            for (_, _, reply), outcome in zip(batch, results, strict=True):
                reply.set([interrupted if r is None else r for r in outcome])
            self._in_flight -= 1
            self._wakeup.set()

    async def _insert(self, batch, rows: list[Row], results: list[list[Result | None]]) -> None:
        """Store ``rows`` in one transaction; if Postgres refuses their data, store
        each half alone (recursively), so only the offending rows are refused."""
        if not rows:
            return
        by_video: dict[int, list[int]] = {}
        for b, i in rows:
            by_video.setdefault(b, []).append(i)
        parts = [(batch[b][0], [batch[b][1][i] for i in idx]) for b, idx in by_video.items()]
        try:
            stored = await self._store.insert_many(parts)
        except Unstorable as exc:
            if len(rows) == 1:
                b, i = rows[0]
                log.warning("video %s: a comment was refused: %s", batch[b][0], exc.message)
                results[b][i] = exc
                return
            half = len(rows) // 2  # in order: a video's first half gets its seqs first
            await self._insert(batch, rows[:half], results)
            await self._insert(batch, rows[half:], results)
            return
        except StoreUnavailable as exc:
            self._fail(rows, results, exc)
            return
        except Exception:
            # A Postgres error other than "unavailable" or "bad data" (read-only
            # standby, disk full): these posts fail with 503; the node goes on.
            log.exception("merged insert failed")
            self._fail(rows, results, StoreUnavailable("the write failed; retry"))
            return
        self.transactions += 1
        for b, idx in by_video.items():
            for i, comment in zip(idx, stored[batch[b][0]], strict=True):
                results[b][i] = comment

    @staticmethod
    def _fail(rows: list[Row], results: list[list[Result | None]], error: LivehubError) -> None:
        for b, i in rows:
            results[b][i] = error
