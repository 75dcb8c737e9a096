"""One viewer: connect, read events, record what arrived; reconnect like EventSource.

Over SSE (``GET .../stream``, resuming with ``Last-Event-ID``) or, with
``--transport ws``, over livehub's WebSocket (``GET .../ws``, resuming with
``?last_event_id=``). The hot paths are ``Viewer._consume`` and ``_consume_ws``: per
read they take the clock once, then for each comment find the message token (and on
WS the seq) and append three ints to arrays. Nothing is decoded that the audit does
not need.
"""

from __future__ import annotations

import time
from array import array

import trio

from livehub_loadtest.config import LoadConfig
from livehub_loadtest.http1 import ChunkedDecoder, HttpProtocolError, build_request
from livehub_loadtest.net import PeerClosed, close, connect, read_head, recv, send_all
from livehub_loadtest.sse import SseParser, SseProtocolError, find_token, order_key, pack_key
from livehub_loadtest.ws import (
    OP_CLOSE,
    OP_PONG,
    WsParser,
    WsProtocolError,
    check_handshake,
    client_frame,
    comment_seq,
    deleted_seq,
    handshake_request,
    stream_event,
)

RECONNECT_DELAY_S = 0.2  # like EventSource's retry, short: we want to see gaps, not wait
MAX_ERRORS_KEPT = 5  # per viewer, for the report
COMMENT_EVENTS = (b"comment", b"message")  # livehub's type, and nchan's default type


class ViewerCounters:
    """Process-wide numbers shared by the viewers of one group (one owner: its trio run)."""

    def __init__(self, total: int, targets: int = 1) -> None:
        self.total = total
        self.connected = 0  # viewers that connected at least once
        self.all_connected = trio.Event()
        # post-to-receive latency per viewer target (``LoadConfig.viewer_targets``):
        # viewers that never dropped, and viewers after they resumed
        self.lat_live_us = [array("q") for _ in range(max(1, targets))]
        self.lat_resumed_us = [array("q") for _ in range(max(1, targets))]
        self.foreign = 0  # events that were not this run's messages
        # socket reads that carried at least one comment event: with one event per
        # server write and a reader that keeps up, reads == writes (scenario w)
        self.comment_reads = 0


class Viewer:
    __slots__ = (
        "_cfg",
        "_counters",
        "_lat",
        "_scope",
        "_target",
        "conn_marks",
        "connected_ns",
        "del_ids",
        "del_targets",
        "disconnects",
        "dropping",
        "errors",
        "ids",
        "index",
        "keys",
        "last_id",
        "last_seq",
        "reconnects",
        "resumer",
        "video",
    )

    def __init__(self, cfg: LoadConfig, index: int, counters: ViewerCounters) -> None:
        self._cfg = cfg
        self._counters = counters
        self._target = cfg.viewer_target(index)
        self._lat = counters.lat_live_us[self._target]
        self._scope: trio.CancelScope | None = None
        self.index = index
        self.video = index % cfg.videos
        self.resumer = cfg.is_resumer(index)
        self.keys = array("q")  # packed (poster, n) of each message, in arrival order
        self.ids = array("q")  # orderable event ids, in arrival order
        # livehub moderation: each "deleted" event's id and the seq it deletes (equal
        # for a tombstone: a deleted comment's own seq, replayed without its text)
        self.del_ids = array("q")
        self.del_targets = array("q")
        self.conn_marks: list[tuple[int, int]] = []  # (connected at ns, len(keys) then)
        self.last_id: bytes | None = None  # SSE: the last event id seen
        self.last_seq: int | None = None  # WS: the last comment seq seen
        self.connected_ns = 0  # wall clock of the first successful connect
        self.reconnects = 0
        self.disconnects = 0  # connections that ended without us asking
        self.dropping = False
        self.errors: list[str] = []

    def drop(self) -> None:
        """Close the connection now; ``run`` waits the resume pause, then resumes."""
        self.dropping = True
        self._lat = self._counters.lat_resumed_us[self._target]
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Stay connected until cancelled (the group's nursery bounds it in time)."""
        cfg = self._cfg
        while True:
            with trio.CancelScope() as scope:
                self._scope = scope
                try:
                    if cfg.transport == "ws":
                        await self._connect_and_read_ws()
                    else:
                        await self._connect_and_read()
                    self.disconnects += 1
                except (
                    OSError,
                    PeerClosed,
                    HttpProtocolError,
                    SseProtocolError,
                    WsProtocolError,
                ) as exc:
                    self.disconnects += 1
                    self._note(repr(exc))
                except trio.TooSlowError:
                    self.disconnects += 1
                    self._note("connect timeout")
            self._scope = None
            if self.dropping:
                await trio.sleep(cfg.resume_pause_s)
                self.dropping = False
            else:
                await trio.sleep(RECONNECT_DELAY_S)
            self.reconnects += 1

    def _note(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def _where(self) -> tuple[str, int, tuple]:
        """(Host header, family, address) this viewer connects to."""
        cfg = self._cfg
        if cfg.viewer_targets:
            return cfg.viewer_targets[self._target]
        return cfg.host, cfg.family, cfg.addr

    def _mark_connected(self) -> None:
        self.conn_marks.append((time.time_ns(), len(self.keys)))
        if not self.connected_ns:
            self.connected_ns = time.time_ns()
            self._counters.connected += 1
            if self._counters.connected == self._counters.total:
                self._counters.all_connected.set()

    async def _connect_and_read(self) -> None:
        cfg = self._cfg
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id.decode("latin-1")
        host, family, addr = self._where()
        request = build_request("GET", cfg.video_path(self.video) + "/stream", host, headers)
        sock = await connect(family, addr, cfg.connect_timeout_s)
        try:
            with trio.fail_after(cfg.connect_timeout_s):
                await send_all(sock, request)
                head, rest = await read_head(sock)
            if head.status != 200:
                raise HttpProtocolError(f"stream status {head.status}")
            self._mark_connected()
            decoder = ChunkedDecoder() if head.chunked else None
            parser = SseParser()
            if rest:
                self._consume(decoder.feed(rest) if decoder else rest, parser)
            while True:
                data = await recv(sock)
                if not data:
                    return
                if decoder is not None:
                    data = decoder.feed(data)
                    if decoder.done:
                        return
                self._consume(data, parser)
        finally:
            close(sock)

    def _consume(self, data: bytes, parser: SseParser) -> None:
        events = parser.feed(data)
        if not events:
            return
        now_us = time.time_ns() // 1000
        marker = self._cfg.marker
        keys, ids, lat = self.keys, self.ids, self._lat
        before = len(keys)
        for ev in events:
            if ev.event not in COMMENT_EVENTS:
                if ev.id is not None:  # a moderation event: a position of the stream too
                    self.last_id = ev.id
                    key = order_key(ev.id)
                    if key is not None:
                        ids.append(key)
                        if ev.event == b"deleted":
                            self._deleted(key, ev.data)
                continue
            if ev.id is not None:
                self.last_id = ev.id
            token = find_token(ev.data, marker)
            if token is None:
                self._counters.foreign += 1
                continue
            keys.append(pack_key(token.poster, token.n))
            key = order_key(ev.id)
            if key is not None:
                ids.append(key)
            lat.append(now_us - token.send_ns // 1000)
        if len(keys) != before:
            self._counters.comment_reads += 1

    def _deleted(self, event_id: int, data: bytes) -> None:
        target = deleted_seq(data)
        if target is not None:
            self.del_ids.append(event_id)
            self.del_targets.append(target)

    async def _connect_and_read_ws(self) -> None:
        """livehub's WebSocket: resume after the last seq seen, answer pings, return
        when the server closes (1012/1013 say: reconnect with last_event_id)."""
        cfg = self._cfg
        path = cfg.video_path(self.video) + "/ws"
        if self.last_seq is not None:
            path += f"?last_event_id={self.last_seq}"
        host, family, addr = self._where()
        request, key = handshake_request(path, host)
        sock = await connect(family, addr, cfg.connect_timeout_s)
        try:
            with trio.fail_after(cfg.connect_timeout_s):
                await send_all(sock, request)
                head, data = await read_head(sock)
            check_handshake(head, key)
            self._mark_connected()
            parser = WsParser()
            while True:
                if data:
                    self._consume_ws(data, parser)
                    if parser.pings:
                        pongs = b"".join(client_frame(OP_PONG, p) for p in parser.pings)
                        parser.pings.clear()
                        await send_all(sock, pongs)
                    if parser.close_code is not None:
                        self._note(f"ws closed by the server: {parser.close_code}")
                        await send_all(sock, client_frame(OP_CLOSE))
                        return
                data = await recv(sock)
                if not data:
                    return
        finally:
            close(sock)

    def _consume_ws(self, data: bytes, parser: WsParser) -> None:
        messages = parser.feed(data)
        if not messages:
            return
        now_us = time.time_ns() // 1000
        marker = self._cfg.marker
        keys, ids, lat = self.keys, self.ids, self._lat
        before = len(keys)
        last = None
        for message in messages:
            seq = comment_seq(message)
            if seq is None:
                event = stream_event(message)  # a moderation event: it has a position
                if event is not None:
                    kind, last = event
                    ids.append(last)
                    if kind == b"deleted":
                        self._deleted(last, message)
                continue  # viewers, ping: not comments
            last = seq
            token = find_token(message, marker)
            if token is None:
                self._counters.foreign += 1
                continue
            keys.append(pack_key(token.poster, token.n))
            ids.append(seq)
            lat.append(now_us - token.send_ns // 1000)
        if last is not None:
            self.last_seq = last
        if len(keys) != before:
            self._counters.comment_reads += 1
