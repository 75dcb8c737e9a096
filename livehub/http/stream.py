"""GET /comments/<video_id>/stream: Server-Sent Events, resumable with Last-Event-ID."""

from __future__ import annotations

import math
import weakref
from collections.abc import AsyncIterator

import trio
from quart import Blueprint, Response, current_app, request

from .. import sse, validate
from ..errors import StoreUnavailable
from ..feed import Feed
from ..gate import Draining, StreamSlot
from .transport import DirectTransport

bp = Blueprint("stream", __name__)

PENDING_FLUSH_SECONDS = 2.0  # bound on finishing a direct write when a stream must end


@bp.get("/comments/<video_id>/stream")
async def stream(video_id: str) -> Response:
    svc = current_app.service
    settings = svc.settings
    video_id = validate.video_id(video_id)
    after = validate.last_event_id(
        request.headers.get("Last-Event-ID"), request.args.get("last_event_id")
    )
    backlog = validate.non_negative_int("backlog", request.args.get("backlog")) or 0
    backlog = min(backlog, settings.backlog_max)
    slot = svc.gate.open_stream(video_id)  # full or draining: 503 with Retry-After
    feed = Feed(svc.registry, svc.store, video_id, svc.metrics.catchups_inc)
    try:
        await feed.start(after, backlog)
    except BaseException:
        feed.close()
        slot.close()
        raise
    events = _events(feed, slot, svc, DirectTransport.from_scope(request.scope))
    # A client gone before the body starts leaves the generator unstarted, so its
    # finally never runs: release the slot and the subscription when it is dropped.
    weakref.finalize(events, _release, feed, slot)
    response = Response(
        events,
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # else Quart ends every stream after RESPONSE_TIMEOUT
    return response


def _release(feed: Feed, slot: StreamSlot) -> None:
    feed.close()
    slot.close()


async def _events(feed: Feed, slot, svc, transport: DirectTransport | None) -> AsyncIterator[bytes]:
    """The first yield sends the headers and the retry hint through Quart and
    Hypercorn. After that, with a direct transport, the actor writes live frames to
    the socket itself while this task sleeps; this task writes only what the actor
    queued for it (catch-up, a lag, an unfinished write) and heartbeats. Without one,
    each yield is one socket write carrying everything queued."""
    metrics, gate = svc.metrics, svc.gate
    retry = sse.retry_hint(svc.settings.sse_retry_ms)
    metrics.connections.inc()
    try:
        extras = _Extras(svc, feed.video_id)
        yield retry + extras.viewers() + sse.pinned_snapshot(feed.pinned_at_connect)
        if transport is None:
            while True:
                try:
                    frames = await gate.wait(feed.next_batch, extras.deadline())
                except Draining:  # node shutting down: reconnect (elsewhere) to resume
                    yield retry
                    return
                data = extras.compose(frames)
                if data:
                    yield data
        else:
            # The actor writes pings and viewer counts to idle direct viewers too, so
            # this task wakes only for what was queued for it, or a drain.
            feed.attach_direct(transport)
            while True:
                feed.set_direct_ready(True)
                try:
                    frames = await gate.wait(feed.next_batch, math.inf)
                except Draining:
                    feed.set_direct_ready(False)
                    await transport.write(transport.frame(retry))
                    return
                feed.set_direct_ready(False)
                data = extras.compose(frames)
                await transport.write(transport.frame(data) if data else b"")
    except StoreUnavailable:
        # Cannot continue gaplessly now: end; EventSource resumes by Last-Event-ID. A
        # direct write's unfinished tail goes first, or the chunked body is malformed.
        if transport is not None and transport.has_pending:
            feed.set_direct_ready(False)
            with trio.move_on_after(PENDING_FLUSH_SECONDS):
                try:
                    await transport.write(b"")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return  # the viewer is gone
    finally:
        feed.close()
        slot.close()
        metrics.connections.dec()


class _Extras:
    """What a stream owes its viewer besides comments: the video's viewer count when it
    changed (checked every viewer_count_seconds) and a ping after heartbeat_seconds
    of silence. Deadlines are on Trio's clock."""

    def __init__(self, svc, video_id: str) -> None:
        self._settings = svc.settings
        self._counts = svc.viewers
        self._video_id = video_id
        self._count = self._counts.total(video_id)
        now = trio.current_time()
        self._next_ping = now + self._settings.heartbeat_seconds
        self._next_count = now + self._settings.viewer_count_seconds

    def viewers(self) -> bytes:
        return sse.viewers_event(self._count)

    def deadline(self) -> float:
        return min(self._next_ping, self._next_count)

    def compose(self, frames: list | None) -> bytes:
        """The bytes of one write (b"": nothing due): frames, count, or a ping."""
        now = trio.current_time()
        data = _join(frames) if frames else b""
        if now >= self._next_count:
            self._next_count = now + self._settings.viewer_count_seconds
            count = self._counts.total(self._video_id)
            if count != self._count:
                self._count = count
                data += sse.viewers_event(count)
        if data:
            self._next_ping = now + self._settings.heartbeat_seconds
        elif now >= self._next_ping:
            self._next_ping = now + self._settings.heartbeat_seconds
            data = sse.PING
        return data


def _join(frames: list) -> bytes:
    if len(frames) == 1:
        return frames[0].sse()
    return b"".join(f.sse() for f in frames)
