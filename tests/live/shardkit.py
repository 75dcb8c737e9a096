"""Helpers for tests of several shards: pick videos by shard, a viewer that resumes
with Last-Event-ID whatever happens to its stream, posts that record what was acked."""

from __future__ import annotations

import httpx
import trio

from livehub.core.shards import shard_of

from ..support import SSEReader, auth


def videos_on(shard: int, shards: int, count: int = 1, prefix: str = "v") -> list[str]:
    """``count`` video ids that live on ``shard`` of ``shards``."""
    out, i = [], 0
    while len(out) < count:
        video = f"{prefix}{i}"
        if shard_of(video, shards) == shard:
            out.append(video)
        i += 1
    return out


class ResumingViewer:
    """One viewer of ``video`` on ``url``: reconnects (Last-Event-ID) after any end or
    error of its stream, and keeps every comment event in the order it got them."""

    def __init__(self, url: str, video: str) -> None:
        self.url = url
        self.video = video
        self.seqs: list[int] = []
        self.messages: dict[int, str] = {}
        self.reconnects = 0
        self.connected = trio.Event()
        self._got = trio.Event()

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(5, read=30)) as c:
            while True:
                headers = {"Last-Event-ID": str(self.last)} if self.seqs else {}
                try:
                    async with c.stream(
                        "GET", f"/comments/{self.video}/stream", headers=headers
                    ) as r:
                        if r.status_code == 200:
                            self.connected.set()
                            reader = SSEReader(r)
                            while True:
                                ev = await reader.next_event()
                                if ev.id is None:
                                    continue  # viewers, pings, a pin snapshot
                                self.seqs.append(ev.id)  # comments and moderation events
                                if ev.event == "comment":
                                    self.messages[ev.id] = ev.json()["message"]
                                self._got.set()
                except (httpx.HTTPError, EOFError):
                    pass
                self.reconnects += 1
                await trio.sleep(0.2)

    async def wait_for(self, seq: int, within: float) -> None:
        with trio.fail_after(within):
            while self.last < seq:
                self._got = trio.Event()
                await self._got.wait()


async def post(client: httpx.AsyncClient, url: str, video: str, message: str) -> httpx.Response:
    return await client.post(f"{url}/comments/{video}", json={"message": message}, headers=auth())


def assert_gapless(viewer: ResumingViewer, acked: dict[int, str]) -> None:
    """The viewer got seqs 1..N once each, in order (comments and moderation events),
    every acked comment among them, and no comment that was not acked."""
    assert viewer.seqs == list(range(1, len(viewer.seqs) + 1)), viewer.seqs
    assert set(acked) <= set(viewer.seqs)
    assert viewer.messages == {seq: acked[seq] for seq in viewer.messages}
    assert set(viewer.messages) <= set(acked)
