"""An EventSource-like test viewer: follows a video's stream, and when the stream ends
or the connection fails it waits the server's ``retry:`` and reconnects with
``Last-Event-ID``, as a browser does. It records every comment and which node
served each connection (the ``X-Livehub-Node`` header). Given several base URLs (no
balancer in front), a refused or failed connection moves it to the next one."""

from __future__ import annotations

import httpx
import trio

from ..support import SSEReader


class ResumingViewer:
    def __init__(self, base_urls: str | list[str], video: str) -> None:
        self.base_urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        self._at = 0
        self.video = video
        self.comments: list[dict] = []
        self.nodes: list[str] = []  # one per successful connection, in order
        self.refusals: list[int] = []  # statuses of refused (re)connects
        self.viewer_counts: list[int] = []
        self.retry_ms = 1000
        self.connected = trio.Event()  # set on each (re)connection; replaced after
        self._changed = trio.Event()

    @property
    def last_seq(self) -> int:
        return self.comments[-1]["seq"] if self.comments else 0

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Follow the stream until cancelled; ``started`` after the first connection."""
        started = False
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                headers = {"Last-Event-ID": str(self.last_seq)} if self.comments else {}
                url = f"{self.base_urls[self._at]}/comments/{self.video}/stream"
                try:
                    async with client.stream("GET", url, headers=headers) as response:
                        if response.status_code != 200:
                            self.refusals.append(response.status_code)
                            self._next_url()
                        else:
                            self.nodes.append(response.headers.get("X-Livehub-Node", "?"))
                            self.connected.set()
                            self.connected = trio.Event()
                            if not started:
                                started = True
                                task_status.started(self)
                            await self._read(SSEReader(response))
                except EOFError:
                    pass  # the server ended the stream: reconnect
                except httpx.HTTPError:
                    self._next_url()
                await trio.sleep(self.retry_ms / 1000)

    def _next_url(self) -> None:
        self._at = (self._at + 1) % len(self.base_urls)

    async def _read(self, reader: SSEReader) -> None:
        while True:
            event = await reader.next_event()
            if reader.retry is not None:
                self.retry_ms = reader.retry
            if event.event == "comment":
                self.comments.append(event.json())
            elif event.event == "viewers":
                self.viewer_counts.append(event.json()["count"])
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, n: int) -> list[dict]:
        """Wait until ``n`` comments have arrived (put a fail_after around this)."""
        while len(self.comments) < n:
            await self._changed.wait()
        return self.comments

    async def wait_count(self, count: int) -> None:
        """Wait until the last viewer count received is ``count``."""
        while not self.viewer_counts or self.viewer_counts[-1] != count:
            await self._changed.wait()
