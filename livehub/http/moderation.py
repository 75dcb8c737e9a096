"""Moderation endpoints: delete a comment, bans, chat settings, the pin, the log.

Roles come from the token (``roles.py``); the rules are ``moderation.py``; the SQL
is ``modstore.py``. Every action that viewers see commits stream events (a deletion,
a pin, a settings change) which are then handed to this node's actor for the video
and to the other nodes through the bus, exactly like committed comments.
"""

from __future__ import annotations

import json

from quart import Blueprint, Response, current_app, request

from livehub.core import moderation, validate
from livehub.core.errors import BadRequest, Forbidden, InvalidInput, NotFound
from livehub.core.model import Event
from livehub.core.moderation import (
    may_delete,
    parse_ban,
    parse_pin,
    parse_settings_patch,
    require_moderator,
)
from livehub.core.roles import Principal, roles_from_claims
from livehub.core.wakeup import WakeUp
from livehub.http.body import read_body

bp = Blueprint("moderation", __name__)

LOG_PAGE_DEFAULT = 50
LOG_PAGE_MAX = 500


def _json(body: object, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def _no_content() -> Response:
    return Response("", status=204)


async def _principal(svc) -> Principal:
    """The caller, from ``Authorization: Bearer``; raises Unauthorized (401)."""
    who = await svc.tokens.verify_header(request.headers.get("Authorization"))
    return Principal(who.user_id, roles_from_claims(who.claims, svc.settings.roles_claim))


async def _body(svc) -> bytes:
    validate.json_content_type(request.headers.get("Content-Type"))
    return await read_body(svc.settings.max_body_bytes, svc.settings.body_timeout_seconds)


def _seq(raw: str) -> int:
    seq = validate.non_negative_int("seq", raw)
    if not seq:
        raise BadRequest("seq must be a positive integer", "invalid_seq")
    return seq


async def _as_moderator(raw_video_id: str):
    """The service, the checked video id and the caller, who must moderate it.

    Raises:
        BadRequest: a bad video id. Unauthorized: no valid token. Forbidden: not a
            moderator of the video.
    """
    svc = current_app.service
    video_id = validate.video_id(raw_video_id)
    principal = await _principal(svc)
    require_moderator(principal, video_id)
    return svc, video_id, principal


async def _done(
    svc, video_id: str, action: str, events: list[Event], rules_changed: bool = False
) -> None:
    """After an action committed: its events go where committed comments go (this
    node's actor for the video, if it is live here, and by a wake-up every other
    node's); a change of bans or settings reaches this node's cache at once."""
    if events:
        svc.registry.notify_nowait(WakeUp(video_id, events[0].seq, events[-1].seq, events))
        svc.bus.committed(video_id, events)
    if rules_changed:
        await svc.moderation.changed(video_id)
    svc.metrics.moderation.labels(action).inc()


@bp.delete("/comments/<video_id>/<seq>")
async def delete_comment(video_id: str, seq: str) -> Response:
    svc = current_app.service
    video_id = validate.video_id(video_id)
    target = _seq(seq)
    principal = await _principal(svc)
    author = await svc.modstore.author(video_id, target)
    if author is None:
        raise NotFound(f"no comment {target} in video {video_id}")
    if not may_delete(principal, video_id, author):
        raise Forbidden("only the author or a moderator of the video may delete a comment")
    events = await svc.modstore.delete(video_id, target, principal.user_id)
    if not events:  # deleted meanwhile by someone else
        raise NotFound(f"no comment {target} in video {video_id}")
    await _done(svc, video_id, "delete", events)
    return _no_content()


@bp.post("/videos/<video_id>/bans")
async def ban(video_id: str) -> Response:
    svc, video_id, principal = await _as_moderator(video_id)
    req = parse_ban(await _body(svc))
    stored, events = await svc.modstore.ban(
        video_id, req.user_id, req.seconds, principal.user_id, req.delete_comments
    )
    await _done(svc, video_id, "ban", events, rules_changed=True)
    return _json({**stored.as_dict(), "deleted": [e.target for e in events]}, 201)


@bp.get("/videos/<video_id>/bans")
async def list_bans(video_id: str) -> Response:
    svc, video_id, _ = await _as_moderator(video_id)
    return _json({"bans": [b.as_dict() for b in await svc.modstore.bans(video_id)]})


@bp.delete("/videos/<video_id>/bans/<path:user_id>")
async def unban(video_id: str, user_id: str) -> Response:
    svc, video_id, principal = await _as_moderator(video_id)
    try:
        user_id = moderation.user_id(user_id)
    except InvalidInput as exc:
        raise BadRequest(exc.message, exc.code) from None
    if not await svc.modstore.unban(video_id, user_id, principal.user_id):
        raise NotFound(f"{user_id!r} is not banned from video {video_id}")
    await _done(svc, video_id, "unban", [], rules_changed=True)
    return _no_content()


@bp.get("/videos/<video_id>/settings")
async def get_settings(video_id: str) -> Response:
    svc = current_app.service
    video_id = validate.video_id(video_id)
    stored = (await svc.modstore.stored_settings([video_id])).get(video_id)
    return _json({"video_id": video_id, **svc.moderation.effective(video_id, stored).as_dict()})


@bp.patch("/videos/<video_id>/settings")
async def patch_settings(video_id: str) -> Response:
    svc, video_id, principal = await _as_moderator(video_id)
    changes = parse_settings_patch(await _body(svc), svc.settings.max_message_chars)
    now, events = await svc.modstore.update_settings(
        video_id,
        changes,
        principal.user_id,
        lambda stored: svc.moderation.effective(video_id, stored),
    )
    await _done(svc, video_id, "settings", events, rules_changed=True)
    return _json({"video_id": video_id, **now.as_dict()})


@bp.put("/videos/<video_id>/pin")
async def pin(video_id: str) -> Response:
    svc, video_id, principal = await _as_moderator(video_id)
    seq = parse_pin(await _body(svc))
    events = await svc.modstore.pin(video_id, seq, principal.user_id)
    if events is None:
        raise NotFound(f"no comment {seq} in video {video_id}")
    await _done(svc, video_id, "pin", events)
    return _json({"video_id": video_id, "pinned": json.loads(events[0].data)["comment"]})


@bp.delete("/videos/<video_id>/pin")
async def unpin(video_id: str) -> Response:
    svc, video_id, principal = await _as_moderator(video_id)
    events = await svc.modstore.pin(video_id, None, principal.user_id) or []
    await _done(svc, video_id, "unpin", events)
    return _no_content()


@bp.get("/videos/<video_id>/moderation")
async def moderation_log(video_id: str) -> Response:
    svc, video_id, _ = await _as_moderator(video_id)
    cursor = validate.non_negative_int("cursor", request.args.get("cursor"))
    pagesize = validate.non_negative_int("pagesize", request.args.get("pagesize"))
    limit = min(LOG_PAGE_DEFAULT if not pagesize else pagesize, LOG_PAGE_MAX)
    actions = await svc.modstore.log_page(video_id, cursor, limit)
    next_cursor = actions[-1]["id"] if len(actions) == limit else None
    return _json({"actions": actions, "next_cursor": next_cursor})
