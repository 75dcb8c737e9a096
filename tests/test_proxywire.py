"""The publish proxy's request and answer formats (pure)."""

from __future__ import annotations

import json

import pytest

from livehub.core.proxywire import (
    DEFAULT_REASON,
    Accept,
    Candidate,
    Invalid,
    ProxyResponseError,
    Reject,
    decode_response,
    encode_request,
)


def test_request_lists_the_posts_with_ids_in_order():
    body = encode_request(
        "v1", [Candidate("alice", "hi", "Alice", "203.0.113.7"), Candidate("bob", "yo")]
    )
    assert json.loads(body) == {
        "video_id": "v1",
        "posts": [
            {
                "id": "0",
                "user_id": "alice",
                "message": "hi",
                "user_name": "Alice",
                "client_ip": "203.0.113.7",
                "transport": "http",
            },
            {"id": "1", "user_id": "bob", "message": "yo", "transport": "http"},
        ],
    }


def answer(*results) -> bytes:
    return json.dumps({"results": list(results)}).encode()


def test_verdicts():
    got = decode_response(
        answer(
            {"action": "accept"},
            {"action": "accept", "message": "  h*  "},
            {"action": "reject", "reason": "spam"},
            {"action": "reject"},
            {"action": "accept", "message": None},
        ),
        5,
        [100] * 5,
    )
    assert got == [Accept(), Accept("h*"), Reject("spam"), Reject(DEFAULT_REASON), Accept()]


def test_a_replacement_must_pass_validation():
    got = decode_response(
        answer(
            {"action": "accept", "message": "x" * 11},
            {"action": "accept", "message": "   "},
            {"action": "accept", "message": "nul\x00"},
            {"action": "accept", "message": 5},
        ),
        4,
        [10] * 4,
    )
    assert all(isinstance(v, Invalid) for v in got), got


def test_unknown_actions_and_mismatched_ids_are_invalid():
    got = decode_response(
        answer({"action": "maybe"}, {"id": "7", "action": "accept"}, 3), 3, [9] * 3
    )
    assert all(isinstance(v, Invalid) for v in got), got


def test_a_long_reason_is_cut_and_a_control_character_replaced():
    [long_, ctl] = decode_response(
        answer({"action": "reject", "reason": "r" * 500}, {"action": "reject", "reason": "a\nb"}),
        2,
        [9, 9],
    )
    assert long_ == Reject("r" * 200)
    assert ctl == Reject(DEFAULT_REASON)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"results": {}}', answer({"action": "accept"}), b"\xff"],
)
def test_unusable_answers(body):
    with pytest.raises(ProxyResponseError):
        decode_response(body, 2, [9, 9])
