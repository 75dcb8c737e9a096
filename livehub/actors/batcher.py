"""Group commit for one video: while a transaction is in flight, posts queue and go
into the next transaction together, so posts/s grow with batch size."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn

import trio

from livehub.actors.messages import Committed, Message, Post, Reply
from livehub.actors.ports import Inserter
from livehub.core.errors import LivehubError, StoreUnavailable
from livehub.core.model import Comment


async def serve_batcher(
    video_id: str,
    inserter: Inserter,
    posts: trio.MemoryReceiveChannel[Post],
    inbox: trio.MemorySendChannel[Message],
    max_batch: int,
    committed: Callable[[str, list[Comment]], None],
) -> NoReturn:
    """Take every queued post (up to ``max_batch``), insert them in one transaction,
    answer each poster after commit, and hand the comments to the actor and the
    node's notifier.

    Error handling: a store failure fails that batch's posts (503) and goes on; a
    post the store refuses (422) fails alone; a post cancelled by its client after
    the insert started still gets stored.
    """
    while True:
        batch = [await posts.receive()]
        while len(batch) < max_batch:
            try:
                batch.append(posts.receive_nowait())
            except trio.WouldBlock:
                break
        write = inserter.submit(video_id, [p.draft for p in batch])
        try:
            results = await write.wait()
        except BaseException:
            # Our actor is going away, but the write goes on: answer the posters when
            # it lands, so a stored comment never gets a 503 (and a retry never stores
            # it twice).
            write.add_done_callback(
                functools.partial(_answer_late, video_id, batch, committed, inbox)
            )
            raise
        comments = _answer(batch, results)  # first: these are committed, whatever follows
        if comments:
            committed(video_id, comments)
            await inbox.send(Committed(comments))


def _answer(batch: list[Post], results: list) -> list[Comment]:
    """Answer each post with its result; returns the stored comments, in seq order."""
    comments = []
    for post, result in zip(batch, results, strict=True):
        if isinstance(result, LivehubError):
            post.reply.fail(result)
        else:
            post.reply.set(result)
            comments.append(result)
    return comments


def _answer_late(video_id: str, batch: list[Post], committed, inbox, write: Reply) -> None:
    """The end of a merged write whose batcher was cancelled meanwhile."""
    results = write.value_nowait()
    if results is None:
        error = write.error
        for post in batch:
            post.reply.fail(error if isinstance(error, StoreUnavailable) else _interrupted())
        return
    comments = _answer(batch, results)
    if not comments:
        return
    committed(video_id, comments)  # other nodes' wake-up
    try:
        inbox.send_nowait(Committed(comments))  # the restarted actor, if it is there
    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the periodic counter check delivers them


def _interrupted() -> StoreUnavailable:
    return StoreUnavailable("the write was interrupted; retry")
