"""Webhook events, delivery ids and the retry backoff (pure)."""

from __future__ import annotations

import json

from livehub.core.webhookwire import (
    backoff_seconds,
    comment_stored,
    encode_batch,
    moderation_payload,
)


def test_a_comment_event_has_an_id_made_of_its_video_and_seq():
    e = comment_stored("v1", 7, "alice", "hi", "2026-12-02T00:00:00.000000Z", "Alice")
    assert e.id == "c:v1:7"
    assert comment_stored("v1", 7, "alice", "edited?", e.created_at, None).id == e.id
    assert e.data == {
        "video_id": "v1",
        "seq": 7,
        "user_id": "alice",
        "message": "hi",
        "created_at": e.created_at,
        "user_name": "Alice",
    }


def test_a_comment_deleted_before_delivery_carries_no_text():
    e = comment_stored("v1", 7, "alice", None, "2026-12-02T00:00:00.000000Z", None)
    assert e.data["message"] is None and e.data["deleted"] is True


def test_moderation_payloads():
    assert moderation_payload("delete", "v", "mod", "3", {"event_seq": 9}) == (
        "comment.deleted",
        {"video_id": "v", "actor": "mod", "seq": 3},
    )
    kind, data = moderation_payload("ban", "v", "mod", "troll", {"seconds": 60, "deleted": [1]})
    assert kind == "user.banned"
    assert data == {
        "video_id": "v",
        "actor": "mod",
        "user_id": "troll",
        "seconds": 60,
        "deleted_seqs": [1],
    }
    assert moderation_payload("settings", "v", "mod", None, {"closed": True})[1]["changes"] == {
        "closed": True
    }
    assert moderation_payload("unpin", "v", "mod", None, {})[0] == "comment.unpinned"


def test_batch_body():
    e = comment_stored("v1", 1, "a", "x", "t", None)
    assert json.loads(encode_batch([e])) == {"events": [e.as_dict()]}


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_seconds(n, 1.0, 10.0) for n in range(6)] == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff_seconds(10_000, 1.0, 300.0) == 300.0
