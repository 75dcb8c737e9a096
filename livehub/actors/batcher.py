"""Group commit for one video: while a transaction is in flight, posts queue and go
into the next transaction together, so posts/s grow with batch size."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import trio

from ..errors import StoreUnavailable
from ..model import Comment
from .messages import Committed, Message, Post


async def serve_batcher(
    video_id: str,
    store,
    posts: trio.MemoryReceiveChannel[Post],
    inbox: trio.MemorySendChannel[Message],
    batch_max: int,
    committed: Callable[[str, list[Comment]], None],
) -> NoReturn:
    """Take every queued post (up to ``batch_max``), insert them in one transaction,
    answer each poster after commit, and hand the comments to the actor and the
    node's notifier.

    Error handling: a store failure fails that batch's posts (503) and goes on; a
    post cancelled by its client after the insert started still gets stored.
    """
    while True:
        batch = [await posts.receive()]
        while len(batch) < batch_max:
            try:
                batch.append(posts.receive_nowait())
            except trio.WouldBlock:
                break
        try:
            comments = await store.insert(video_id, [p.draft for p in batch])
        except StoreUnavailable as exc:
            for post in batch:
                post.reply.fail(exc)
            continue
        except BaseException:
            for post in batch:
                post.reply.fail(StoreUnavailable("the write was interrupted; retry"))
            raise
        for post, comment in zip(batch, comments, strict=True):
            post.reply.set(comment)  # answer first: these are committed, whatever follows
        committed(video_id, comments)
        await inbox.send(Committed(comments))
