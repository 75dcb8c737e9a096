"""In-memory stand-ins for what the actors need (``livehub.actors.ports``), so their
logic is tested directly, under Trio's autojump clock, without Postgres or HTTP.

The end-to-end suites run the same actors against the real store and bus; these
fakes only keep a video's stream in a list with the store's contract: seqs 1, 2, 3,
... per video with no holes, shared by comments and events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import trio

from livehub.core.errors import StoreUnavailable
from livehub.core.model import Comment, Draft, Entry, Event, deleted_data, tombstone
from livehub.core.wakeup import WakeUp

CREATED = "2026-12-02T00:00:00.000000Z"


class FakeStore:
    """A video's stream in memory. ``down`` makes every call raise StoreUnavailable;
    ``hold`` (an Event) makes inserts wait for it, as a slow commit would, and
    ``read_hold`` stream reads; ``read_error`` is raised by the next stream read (an
    exception the actor does not expect: it crashes)."""

    def __init__(self) -> None:
        self.streams: dict[str, list[Entry]] = defaultdict(list)
        self.deleted: set[tuple[str, int]] = set()
        self.down = False
        self.hold: trio.Event | None = None
        self.read_hold: trio.Event | None = None
        self.read_error: Exception | None = None
        self.inserts = 0  # transactions
        self.reads: list[tuple[str, int, int | None]] = []  # read_stream calls

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the fake database is down")

    # -- what another node (or a moderator) does: rows appear without this node --
    def append_elsewhere(self, video_id: str, messages: Sequence[str]) -> list[Comment]:
        stream = self.streams[video_id]
        out = []
        for m in messages:
            c = Comment(video_id, len(stream) + 1, "elsewhere", m, CREATED)
            stream.append(c)
            out.append(c)
        return out

    def delete_elsewhere(self, video_id: str, target: int) -> Event:
        stream = self.streams[video_id]
        self.deleted.add((video_id, target))
        e = Event(
            video_id, len(stream) + 1, "deleted", target, deleted_data(video_id, target), CREATED
        )
        stream.append(e)
        return e

    # -- CommentStore --
    async def insert_many(
        self, batches: Sequence[tuple[str, Sequence[Draft]]]
    ) -> dict[str, list[Comment]]:
        self._check()
        if self.hold is not None:
            await self.hold.wait()
        self._check()
        self.inserts += 1
        out: dict[str, list[Comment]] = {}
        for video_id, drafts in batches:
            stream = self.streams[video_id]
            out[video_id] = []
            for d in drafts:
                c = Comment(video_id, len(stream) + 1, d.user_id, d.message, CREATED, d.user_name)
                stream.append(c)
                out[video_id].append(c)
        await trio.lowlevel.checkpoint()
        return out

    def _visible(self, e: Entry) -> Entry:
        if type(e) is Comment and (e.video_id, e.seq) in self.deleted:
            return tombstone(e.video_id, e.seq, e.created_at)
        return e

    async def read_stream(
        self, video_id: str, after: int, until: int | None = None, limit: int = 1000
    ) -> list[Entry]:
        self._check()
        self.reads.append((video_id, after, until))
        if self.read_hold is not None:
            await self.read_hold.wait()
        if self.read_error is not None:
            error, self.read_error = self.read_error, None
            raise error
        await trio.lowlevel.checkpoint()
        stream = self.streams[video_id]
        end = len(stream) if until is None else min(until, len(stream))
        return [self._visible(e) for e in stream[after:end][:limit]]

    async def stream_tail(self, video_id: str, limit: int) -> list[Entry]:
        self._check()
        await trio.lowlevel.checkpoint()
        return [self._visible(e) for e in self.streams[video_id][-limit:]]

    async def pinned(self, video_id: str) -> tuple[int, str] | None:
        self._check()
        return None

    async def head(self, video_id: str) -> int:
        return (await self.heads([video_id])).get(video_id, 0)

    async def heads(self, video_ids: Sequence[str]) -> dict[str, int]:
        self._check()
        await trio.lowlevel.checkpoint()
        return {v: len(self.streams[v]) for v in video_ids if self.streams.get(v)}


class FakeBus:
    """Records what a node would NOTIFY and LISTEN; ``wake`` plays another node's
    wake-up into a registry."""

    def __init__(self) -> None:
        self.listening: dict[str, int] = defaultdict(int)
        self.sent: list[tuple[str, int, int]] = []  # (video, first seq, last seq)

    async def listen(self, video_id: str) -> None:
        self.listening[video_id] += 1

    def unlisten(self, video_id: str) -> None:
        self.listening[video_id] -= 1
        if self.listening[video_id] == 0:
            del self.listening[video_id]

    def committed(self, video_id: str, comments: list[Entry]) -> None:
        self.sent.append((video_id, comments[0].seq, comments[-1].seq))


def wake(comments: list[Entry], inline: bool = True) -> WakeUp:
    """Another node's wake-up for ``comments`` (inline, or only the seq range)."""
    first, last = comments[0], comments[-1]
    return WakeUp(first.video_id, first.seq, last.seq, comments if inline else None)
