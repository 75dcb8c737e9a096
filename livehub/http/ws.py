"""GET /comments/<video_id>/ws: the viewer's Feed over one WebSocket, plus posting.

Server -> client, one JSON text message each:
  {"type": "comment", "comment": {...}}   in seq order, gapless, as on SSE
  {"type": "posted", "comment": {...}}    the answer to a post (then also a "comment")
  {"type": "error", "error": {"code", "message"}, "status": N}   (a bad post, ...)
  {"type": "ping"}                        after heartbeat_seconds without a comment
  {"type": "viewers", "count": N}         viewers of the video on every node, on change
  {"type": "deleted" | "pinned" | "settings", "id": seq, ...}   moderation events, in
                                          the same seq order (``wsframes.py``)
The server closes with 1012 (service restart) when the node shuts down and 1013 when
it cannot continue gaplessly: reconnect (to any node) with ``?last_event_id=``.
Client -> server: {"type": "post", "message": "..."}; an optional "ref" is echoed back
in the answer. Connect with ``?token=<JWT>`` (browsers cannot set headers) or an
``Authorization: Bearer`` header to post; without one the socket is read-only. A bad
token is refused at the handshake with the 401 JSON a POST would get. Resume with
``?last_event_id=<seq>``; ``?backlog=N`` as on SSE.
"""

from __future__ import annotations

import json
import time

import trio
from quart import Blueprint, current_app, websocket

from livehub.core import clientaddr, validate
from livehub.core.errors import (
    BadRequest,
    LivehubError,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)
from livehub.core.model import Draft
from livehub.core.wsframes import pinned_snapshot_ws
from livehub.http.comments import check_limits
from livehub.http.errors import status_of
from livehub.http.session import ViewerSession
from livehub.node.gate import Draining

bp = Blueprint("ws", __name__)

PING = '{"type":"ping"}'
CLOSE_TRY_AGAIN = 1013  # RFC 6455 "Try Again Later": reconnect with last_event_id
CLOSE_RESTART = 1012  # "Service Restart": this node shuts down; reconnect elsewhere


@bp.websocket("/comments/<video_id>/ws")
async def comments_ws(video_id: str) -> None:
    """Subscribe before accepting (so nothing posted after the handshake is missed),
    then run the writer (feed -> socket) and the reader (socket -> posts) together.

    Resource handling: the Feed's subscription is closed however the socket ends
    (client gone: Quart cancels this handler).
    """
    svc = current_app.service
    video_id = validate.video_id(video_id)
    after = validate.last_event_id(None, websocket.args.get("last_event_id"))
    backlog = validate.non_negative_int("backlog", websocket.args.get("backlog")) or 0
    token = _connect_token()
    if token is not None:
        await svc.tokens.verify(token)  # refuse the handshake with a 401
    session = ViewerSession(svc, video_id, websocket.scope)
    try:
        await session.open(after, backlog)  # full or draining: 503 at the handshake
        await websocket.accept()
        out = _Outbox()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_write_feed, session, out, nursery)
            await _read_posts(video_id, token, out)
    finally:
        session.close()


def _connect_token() -> str | None:
    """The raw token of ``?token=`` or the Authorization header; None: read-only."""
    query = websocket.args.get("token")
    if query:
        return query
    header = websocket.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


class _Outbox:
    """Both tasks write to the socket; one message goes out whole at a time."""

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def send(self, text: str) -> None:
        async with self._lock:
            await websocket.send(text)


async def _write_feed(session: ViewerSession, out: _Outbox, nursery: trio.Nursery) -> None:
    """Feed frames to the socket in seq order; the viewer count when it changed; a
    ping when idle. The Feed's bounded subscription lags into a store catch-up while
    this task waits on a slow client. A drain closes with 1012 once the node's posts
    in flight (this client's too) are answered."""
    await out.send(_viewers_message(session.count))
    for text in pinned_snapshot_ws(session.feed.pinned_at_connect):  # a new viewer: the pin
        await out.send(text)
    try:
        while True:
            try:
                due = await session.next()
            except Draining:
                await session.gate.wait_posts_done()
                await websocket.close(CLOSE_RESTART, "server restarting; reconnect")
                nursery.cancel_scope.cancel()
                return
            if due.viewers is not None:
                await out.send(_viewers_message(due.viewers))
            if due.ping:
                await out.send(PING)
            for frame in due.frames:
                for text in frame.ws_messages():
                    await out.send(text)
    except Unavailable as exc:
        # Cannot continue gaplessly now: say so; the client resumes by last_event_id.
        await out.send(_error_message(exc, None))
        await websocket.close(CLOSE_TRY_AGAIN, "store unavailable; reconnect")
        nursery.cancel_scope.cancel()


async def _read_posts(video_id: str, token: str | None, out: _Outbox) -> None:
    """Answer each client message; runs until the client goes (then we are cancelled)."""
    svc = current_app.service
    client = clientaddr.from_scope(websocket.scope, svc.settings.trusted_proxies)
    while True:
        raw = await websocket.receive()
        body = raw.encode("utf-8") if isinstance(raw, str) else raw
        ref = None
        started = time.perf_counter()
        try:
            data = _parse_object(body, svc.settings.max_body_bytes)
            ref = data.get("ref")
            if data.get("type") != "post":
                raise BadRequest('unknown message type; the only one is "post"', "unknown_type")
            message = validate.comment_message(body, svc.settings.max_message_chars)
            if token is None:
                raise Unauthorized("posting needs a token: connect with ?token=<JWT>")
            who = await svc.tokens.verify(token)  # it may have expired
            with svc.gate.post():  # a drain waits until the answer below is written
                await svc.moderation.check_post(video_id, who.user_id, message)
                check_limits(svc, who.user_id, video_id)
                draft = Draft(who.user_id, message, who.user_name)
                if svc.proxy is not None:
                    draft = await svc.proxy.review(video_id, draft, client, "websocket")
                comment = await svc.registry.post(video_id, draft)
                svc.metrics.posts.inc()
                svc.metrics.post_latency.observe(time.perf_counter() - started)
                answer = {"type": "posted", "comment": comment.as_dict()}
                if ref is not None:
                    answer["ref"] = ref
                await out.send(_dumps(answer))
        except LivehubError as exc:
            await out.send(_error_message(exc, ref))
            continue


def _viewers_message(count: int) -> str:
    return _dumps({"type": "viewers", "count": count})


def _parse_object(body: bytes, max_bytes: int) -> dict:
    """A client message as a JSON object (its message is then validated as POST's body).

    Raises:
        PayloadTooLarge, BadRequest: as the HTTP API would for such a body.
    """
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"message is larger than {max_bytes} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("message is not valid JSON", "invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest(
            'send a JSON object like {"type": "post", "message": "..."}', "invalid_json"
        )
    return data


def _error_message(exc: LivehubError, ref: object) -> str:
    body: dict[str, object] = {
        "type": "error",
        "error": {"code": exc.code, "message": exc.message},
        "status": status_of(exc),
    }
    if ref is not None:
        body["ref"] = ref
    return _dumps(body)


def _dumps(body: object) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
