"""POST /comments/<video_id> as a raw ASGI handler: the hot ingest path.

Same contract as before (docs in README.md): validate, check the token and the
posting limits, hand the post to the video's actor, answer 201 with the stored
comment after commit. No Quart objects, no extra task: on the lean server the whole
request runs in the connection's task and the answer is one socket write.
"""

from __future__ import annotations

import time

from livehub.core import clientaddr, validate
from livehub.core.errors import LivehubError
from livehub.core.model import Draft
from livehub.http.comments import check_limits
from livehub.http.raw import NOSNIFF, Request, dumps, error_headers, request_id, respond
from livehub.node import logs


async def post_comment(app, scope: dict, receive, send, raw_video_id: str) -> None:
    req = Request(scope, receive)
    rid = request_id(req)
    svc = app.service
    settings = svc.settings
    headers = [(b"x-request-id", rid.encode("ascii")), NOSNIFF]
    try:
        if svc is None:
            raise LivehubError("the server is starting")
        headers.append((b"x-livehub-node", svc.node_id.encode("ascii")))
        video_id = validate.video_id(raw_video_id)
        who = await svc.tokens.verify_header(req.header(b"authorization"))
        validate.json_content_type(req.header(b"content-type"))
        body = await req.body(settings.max_body_bytes, settings.body_timeout_seconds)
        message = validate.comment_message(body, settings.max_message_chars)
        with svc.gate.post():  # a drain waits for this post (or refuses it: 503)
            await svc.moderation.check_post(video_id, who.user_id, message)  # 403 banned/closed
            check_limits(svc, who.user_id, video_id)
            draft = Draft(who.user_id, message, who.user_name)
            if svc.proxy is not None:  # 403 rejected, 503 proxy_unavailable, or a new text
                client = clientaddr.from_scope(scope, settings.trusted_proxies)
                draft = await svc.proxy.review(video_id, draft, client, "http")
            comment = await svc.registry.post(video_id, draft)
        svc.metrics.posts.inc()
        svc.metrics.post_latency.observe(time.perf_counter() - req.started)
        status, out = 201, dumps(comment.as_dict())
    except LivehubError as exc:
        status, extra, out = error_headers(exc)
        headers.extend(extra)
        svc.metrics.post_errors.labels(str(status)).inc()
    if svc.gate.draining:
        headers.append((b"connection", b"close"))
    await respond(send, status, out, headers)
    if settings.access_log:
        logs.log_access(req.method, req.path, status, req.started)
