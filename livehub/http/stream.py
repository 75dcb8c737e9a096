"""GET /comments/<video_id>/stream: Server-Sent Events, resumable with Last-Event-ID.

A raw ASGI handler (``front.py`` routes to it). The response head and the first
events (the retry hint, the viewer count, any replay) go out through the server;
after that, with a direct transport (``transport.py``), the video's actor writes live
frames, pings and counts to the socket itself while this task sleeps, and this task
writes only what was queued for it (catch-up, a lag, an unfinished write). On the
lean server this task is the connection's only task: it sleeps in the socket, so a
viewer that leaves is noticed at once. Without a direct transport (TLS, HTTP/2, an
unknown server) each wake-up is one write through ASGI ``send``.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import trio

from livehub.core import sse, validate
from livehub.core.errors import LivehubError, Unavailable
from livehub.http.raw import NOSNIFF, Request, error_headers, request_id, respond
from livehub.http.session import Due, ViewerSession
from livehub.http.transport import DirectTransport
from livehub.node import logs
from livehub.node.gate import Draining

PENDING_FLUSH_SECONDS = 2.0  # bound on finishing a direct write when a stream must end
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _query(req: Request) -> dict[str, str]:
    if not req.query:
        return {}
    parsed = parse_qs(req.query.decode("latin-1"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


async def stream(app, scope: dict, receive, send, raw_video_id: str) -> None:
    req = Request(scope, receive)
    rid = request_id(req)
    svc = app.service
    settings = svc.settings
    headers = [
        (b"x-request-id", rid.encode("ascii")),
        (b"x-livehub-node", svc.node_id.encode()),
        NOSNIFF,
    ]
    session = None
    try:
        video_id = validate.video_id(raw_video_id)
        args = _query(req)
        after = validate.last_event_id(req.header(b"last-event-id"), args.get("last_event_id"))
        backlog = validate.non_negative_int("backlog", args.get("backlog")) or 0
        session = ViewerSession(svc, video_id, scope)
        await session.open(after, backlog)  # full or draining: 503 with Retry-After
    except LivehubError as exc:
        status, extra, body = error_headers(exc)
        await respond(send, status, body, headers + extra)
        if settings.access_log:
            logs.log_access(req.method, req.path, status, req.started)
        return
    if settings.access_log:
        logs.log_access(req.method, req.path, 200, req.started)
    del req, args  # a stream lives for hours: keep only what it needs
    retry = sse.retry_hint(settings.sse_retry_ms)
    try:
        transport = DirectTransport.from_scope(scope)
        if transport is not None and transport.can_wait_idle:
            # The lean server: this task is the connection's only one, and it notices
            # a viewer that leaves by sleeping in the socket (transport.wait_idle).
            await _serve(session, transport, send, headers, retry)
            return
        # Another server tells us the client left only through receive().
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            await _serve(session, transport, send, headers, retry)
            nursery.cancel_scope.cancel()
    finally:
        session.close()


async def _cancel_on_disconnect(receive, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _serve(
    session: ViewerSession, transport: DirectTransport | None, send, headers, retry: bytes
) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS + headers})
    headers.clear()  # held for the whole stream otherwise: a viewer's bytes count
    try:
        await send(
            {
                "type": "http.response.body",
                "body": retry
                + sse.viewers_event(session.count)
                + sse.pinned_snapshot(session.feed.pinned_at_connect),
                "more_body": True,
            }
        )
        if transport is None:
            await _through_send(session, send, retry)
        else:
            # The actor writes live frames, pings and viewer counts to idle direct
            # viewers itself, so this task wakes only for what was queued for it (a
            # catch-up, a lag, an unfinished write) or a drain.
            session.feed.attach_direct(transport)
            while True:
                try:
                    frames = await session.next_direct()
                except Draining:
                    await transport.write(transport.frame(retry))
                    return
                data = encode(Due(frames, None, False)) if frames else b""
                await transport.write(transport.frame(data) if data else b"")
    except Unavailable:
        # Cannot continue gaplessly now: end; EventSource resumes by Last-Event-ID. A
        # direct write's unfinished tail goes first, or the chunked body is malformed.
        if transport is not None and transport.has_pending:
            with trio.move_on_after(PENDING_FLUSH_SECONDS):
                try:
                    await transport.write(b"")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return  # the viewer is gone
    try:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def _through_send(session: ViewerSession, send, retry: bytes) -> None:
    while True:
        try:
            due = await session.next()
        except Draining:  # node shutting down: reconnect (elsewhere) to resume
            await send({"type": "http.response.body", "body": retry, "more_body": True})
            return
        data = encode(due)
        if data:
            await send({"type": "http.response.body", "body": data, "more_body": True})


def encode(due: Due) -> bytes:
    """The SSE bytes of one wake-up (b"": nothing to write)."""
    frames = due.frames
    if len(frames) == 1:
        data = frames[0].sse()
    elif frames:
        data = b"".join(f.sse() for f in frames)
    else:
        data = b""
    if due.viewers is not None:
        data += sse.viewers_event(due.viewers)
    if due.ping and not data:
        data = sse.PING
    return data
