"""The pure parts of moderation: roles, posting rules, request bodies, and how
moderation events are encoded and redacted in the stream."""

from __future__ import annotations

import json

import pytest

from livehub.core.errors import BadRequest, Forbidden, InvalidComment, InvalidInput
from livehub.core.model import Comment, Event, deleted_data, pinned_data, tombstone
from livehub.core.moderation import (
    ChatSettings,
    StoredSettings,
    VideoRules,
    check_post,
    effective,
    may_delete,
    parse_ban,
    parse_pin,
    parse_settings_patch,
)
from livehub.core.ring import Ring
from livehub.core.roles import Principal, can_moderate, roles_from_claims
from livehub.core.sse import encode_comments, pinned_snapshot
from livehub.core.wakeup import decode_wakeups, encode_wakeups
from livehub.core.wsframes import encode_ws, pinned_snapshot_ws

T = "2024-05-01T12:00:00.000001Z"


def comment(seq: int, message: str = "hi", video: str = "v") -> Comment:
    return Comment(video, seq, "u", message, T)


def deletion(seq: int, target: int, video: str = "v") -> Event:
    return Event(video, seq, "deleted", target, deleted_data(video, target), T)


def pin(seq: int, c: Comment | None, video: str = "v") -> Event:
    return Event(video, seq, "pinned", c.seq if c else None, pinned_data(video, c), T)


@pytest.mark.parametrize(
    ("claims", "roles"),
    [
        ({"roles": ["moderator"]}, {"moderator"}),
        ({"roles": "moderator:v  viewer"}, {"moderator:v", "viewer"}),
        ({"roles": ["moderator:v", 3, None, " "]}, {"moderator:v"}),
        ({"roles": {"moderator": True}}, set()),
        ({"roles": 1}, set()),
        ({}, set()),
    ],
)
def test_roles_come_from_a_list_or_a_space_separated_string(claims, roles):
    assert roles_from_claims(claims) == roles


def test_roles_claim_name_is_configurable_and_roles_scope_to_a_video():
    roles = roles_from_claims(
        {"https://example.com/roles": ["moderator:a"]}, "https://example.com/roles"
    )
    assert can_moderate(roles, "a") and not can_moderate(roles, "b")
    assert can_moderate(frozenset({"moderator"}), "anything")
    assert not can_moderate(frozenset({"moderators", "moderator:"}), "a")
    assert may_delete(Principal("author"), "a", "author")
    assert not may_delete(Principal("other"), "a", "author")
    assert may_delete(Principal("other", roles), "a", "author")


def test_posting_rules_bans_expire_closed_chat_and_video_limit():
    rules = VideoRules(ChatSettings(False, 0, 10), None, {"perm": None, "timed": 100.0})
    with pytest.raises(Forbidden) as e:
        check_post(rules, "perm", "x", now=1e9)
    assert e.value.code == "banned"
    with pytest.raises(Forbidden):
        check_post(rules, "timed", "x", now=99.0)
    check_post(rules, "timed", "x", now=100.0)  # the ban has ended
    with pytest.raises(InvalidComment) as e:
        check_post(rules, "ok", "x" * 11, now=0)
    assert e.value.code == "message_too_long"
    closed = VideoRules(ChatSettings(True, 0, 10))
    with pytest.raises(Forbidden) as e:
        check_post(closed, "ok", "x", now=0)
    assert e.value.code == "chat_closed"


def test_effective_settings_fall_back_to_the_server_and_never_exceed_its_limit():
    assert effective(None, 2.0, 500) == ChatSettings(False, 2.0, 500)
    assert effective(StoredSettings(True, 0.0, 9999), 2.0, 500) == ChatSettings(True, 0.0, 500)
    assert effective(StoredSettings(None, None, 20), 2.0, 500) == ChatSettings(False, 2.0, 20)


def test_request_bodies_parse_or_fail_with_400_or_422():
    assert parse_ban(b'{"user_id": "u"}').seconds is None
    assert parse_ban(b'{"user_id": "u", "seconds": 1.5, "delete_comments": true}').delete_comments
    with pytest.raises(BadRequest):
        parse_ban(b"\xff")
    with pytest.raises(InvalidInput):
        parse_ban(b'{"user_id": "u", "seconds": NaN}')
    assert parse_settings_patch(b'{"closed": null}', 100) == {"closed": None}
    with pytest.raises(InvalidInput):
        parse_settings_patch(b'{"max_message_chars": true}', 100)
    assert parse_pin(b'{"seq": 3}') == 3
    with pytest.raises(InvalidInput):
        parse_pin(b'{"seq": 3.0}')


def test_events_encode_as_sse_and_websocket_messages_with_their_own_seq():
    frame = encode_comments([comment(1), deletion(2, 1), pin(3, comment(1))])
    text = frame.decode()
    assert 'id: 2\nevent: deleted\ndata: {"video_id":"v","seq":1}\n\n' in text
    assert "id: 3\nevent: pinned\ndata: " in text
    assert json.loads(encode_ws(deletion(2, 1))) == {
        "type": "deleted",
        "id": 2,
        "video_id": "v",
        "seq": 1,
    }
    ws_pin = json.loads(encode_ws(pin(3, comment(1))))
    assert ws_pin["type"] == "pinned" and ws_pin["id"] == 3 and ws_pin["comment"]["seq"] == 1
    assert json.loads(encode_ws(comment(1)))["type"] == "comment"
    assert pinned_snapshot(None) == b"" and pinned_snapshot_ws(None) == []
    snap = pinned_snapshot(pinned_data("v", comment(1))).decode()
    assert snap.startswith("event: pinned\ndata: ") and "id:" not in snap
    assert json.loads(pinned_snapshot_ws(pinned_data("v", comment(1)))[0])["type"] == "pinned"


def test_wakeups_carry_events_inline_beside_comments():
    entries = [comment(1), deletion(2, 1), pin(3, None)]
    (payload,) = encode_wakeups("n1", [("v", entries)], 7500)
    _, (w,) = decode_wakeups(payload)
    assert (w.first, w.last) == (1, 3) and w.comments == entries


def test_ring_redacts_a_deleted_comment_and_the_pins_that_carried_it():
    ring = Ring(10)
    secret = comment(2, "SECRET")
    ring.extend([comment(1), secret, pin(3, secret), comment(4), deletion(5, 2)])
    ring.redact(2)
    got = ring.after(0)
    assert got[1] == tombstone("v", 2, T)
    assert json.loads(got[2].data) == {"video_id": "v", "comment": None}
    assert [e.seq for e in got] == [1, 2, 3, 4, 5]
    assert all("SECRET" not in repr(e) for e in got)
    ring.redact(99)  # beyond the ring: nothing to do
    ring.redact(0)
