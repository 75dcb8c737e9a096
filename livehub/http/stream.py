"""GET /comments/<video_id>/stream: Server-Sent Events, resumable with Last-Event-ID."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from quart import Blueprint, Response, current_app, request

from .. import sse, validate
from ..errors import StoreUnavailable
from ..feed import Feed

bp = Blueprint("stream", __name__)


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
    feed = Feed(svc.registry, svc.store, video_id, svc.metrics.catchups_inc)
    try:
        await feed.start(after, backlog)
    except BaseException:
        feed.close()
        raise
    response = Response(
        _events(feed, settings.sse_retry_ms, settings.heartbeat_seconds, svc.metrics),
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # else Quart ends every stream after RESPONSE_TIMEOUT
    return response


async def _events(feed: Feed, retry_ms: int, heartbeat: float, metrics) -> AsyncIterator[bytes]:
    """One yield is one socket write: everything queued goes out together."""
    metrics.connections.inc()
    try:
        yield sse.retry_hint(retry_ms)
        while True:
            frames = None
            with trio.move_on_after(heartbeat):
                frames = await feed.next_batch()
            if frames is None:
                yield sse.PING
            elif len(frames) == 1:
                yield frames[0].sse()
            else:
                yield b"".join(f.sse() for f in frames)
    except StoreUnavailable:
        return  # cannot continue gaplessly now: end; EventSource resumes by Last-Event-ID
    finally:
        feed.close()
        metrics.connections.dec()
