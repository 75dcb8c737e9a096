"""POST /comments/<video_id> and GET /comments/<video_id> (history pages, since)."""

from __future__ import annotations

import json
import time

from quart import Blueprint, Response, current_app, request

from .. import validate
from ..auth import user_from_header
from ..errors import PayloadTooLarge, RateLimited, UnsupportedMediaType
from ..model import Draft

bp = Blueprint("comments", __name__)


def _json(body: object, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


async def read_body_limited(max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``max_bytes``."""
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.body:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type() -> None:
    ctype = request.headers.get("Content-Type")
    if ctype is None:
        return  # lenient: a body without a type is read as JSON
    mime = ctype.split(";", 1)[0].strip().lower()
    if mime != "application/json" and not mime.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")


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
async def post_comment(video_id: str) -> Response:
    started = time.perf_counter()
    svc = current_app.service
    settings = svc.settings
    video_id = validate.video_id(video_id)
    user_id = user_from_header(request.headers.get("Authorization"), settings.jwt_secret)
    _check_content_type()
    body = await read_body_limited(settings.max_body_bytes)
    message = validate.comment_message(body, settings.max_message_chars)
    with svc.gate.post():  # a drain waits for this post (or refuses it: 503)
        await svc.moderation.check_post(video_id, user_id, message)  # 403 banned/closed
        check_limits(svc, user_id, video_id)
        comment = await svc.registry.post(video_id, Draft(user_id, message))
    svc.metrics.posts.inc()
    svc.metrics.post_latency.observe(time.perf_counter() - started)
    return _json(comment.as_dict(), 201)


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
    limit = min(limit, settings.page_size_max)
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
