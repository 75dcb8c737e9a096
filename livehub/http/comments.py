"""GET /comments/<video_id> (history pages, since) and the posting limits both post
paths check (the POST itself is the raw handler in ``post.py``)."""

from __future__ import annotations

import json

from quart import Blueprint, Response, current_app, request

from livehub.core import validate
from livehub.core.errors import RateLimited
from livehub.http.errors import error_response

bp = Blueprint("comments", __name__)


def _json(body: object, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def check_limits(svc, user_id: str, video_id: str) -> None:
    """Count a post against the user's rate limit and the video's slow mode.

    Raises:
        RateLimited: over either (429 with Retry-After); nothing was counted.
    """
    refusal = svc.limiter.acquire(user_id, video_id)
    if refusal is None:
        return
    svc.metrics.posts_limited.labels(refusal.reason).inc()
    if refusal.reason == "slow_mode":
        message = "slow mode is on for this video: wait before posting again"
    else:
        message = "too many posts: slow down"
    raise RateLimited(message, refusal.retry_after_seconds)


@bp.post("/comments/<video_id>")
@bp.get("/comments/<video_id>/stream")
async def hot_route_before_start(video_id: str) -> Response:
    """Posting and the SSE stream are raw ASGI handlers (``front.py``) once the service
    runs; registered here too so that Quart's routing knows them (a wrong method gets
    405 with the right ``Allow``) and a request before startup gets a clear 503.
    Once the node runs, only a HEAD of the stream gets here (front.py takes the rest):
    it gets the head a GET would, without opening a stream."""
    if current_app.service is not None and request.method == "HEAD":
        validate.video_id(video_id)
        return Response(
            b"",
            content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )
    return error_response(
        503, "starting", "this node is starting; retry", headers={"Retry-After": "1"}
    )


def _dict_or_none(comment) -> dict | None:
    return None if comment is None else comment.as_dict()


@bp.get("/comments/<video_id>")
async def get_comments(video_id: str) -> Response:
    svc = current_app.service
    settings = svc.settings
    video_id = validate.video_id(video_id)
    args = request.args
    since = validate.non_negative_int("since", args.get("since"))
    cursor = validate.non_negative_int("cursor", args.get("cursor"))
    pagesize = validate.non_negative_int("pagesize", args.get("pagesize"))
    limit = settings.page_size_default if pagesize in (None, 0) else pagesize
    limit = min(limit, settings.max_page_size)
    if since is not None:
        comments = await svc.store.read_range(video_id, since, None, limit)
        next_since = comments[-1].seq if comments else since
        return _json(
            {
                "comments": [c.as_dict() for c in comments],
                "next_since": next_since,
                "viewers": await svc.viewers.read_total(video_id),
            }
        )
    comments = await svc.store.history(video_id, cursor, limit)
    next_cursor = comments[-1].seq if len(comments) == limit and comments[-1].seq > 1 else None
    return _json(
        {
            "comments": [c.as_dict() for c in comments],
            "next_cursor": next_cursor,
            "viewers": await svc.viewers.read_total(video_id),
            "pinned": _dict_or_none(await svc.store.pinned_comment(video_id)),
        }
    )
