"""livehub/wakeup.py: the NOTIFY payloads nodes wake each other with."""

from __future__ import annotations

import random
import zlib

import pytest

from livehub.core.model import Comment
from livehub.core.wakeup import (
    CHANNEL_PREFIX,
    WakeUp,
    channel_of,
    decode_wakeups,
    encode_wakeups,
    own_payload_head,
)

PG_NOTIFY_LIMIT = 8000  # Postgres rejects payloads of 8000 bytes or more
MAX = 7500  # Settings.notify_inline_max_bytes


def comments(video: str, first: int, n: int, message: str = "hi") -> list[Comment]:
    return [
        Comment(video, s, f"user{s}", f"{message}{s}", "2024-05-01T12:00:00.000001Z")
        for s in range(first, first + n)
    ]


def decode_all(payloads: list[str]) -> list[WakeUp]:
    out = []
    for p in payloads:
        node, wakeups = decode_wakeups(p)
        assert node == "node-a"
        out += wakeups
    return out


def test_round_trip_inline():
    batches = [("v1", comments("v1", 1, 3)), ("v2", comments("v2", 10, 1, "é🎉\n\"'\\"))]
    payloads = encode_wakeups("node-a", batches, MAX)
    assert len(payloads) == 1
    node, wakeups = decode_wakeups(payloads[0])
    assert node == "node-a"
    assert wakeups == [
        WakeUp("v1", 1, 3, batches[0][1]),
        WakeUp("v2", 10, 10, batches[1][1]),
    ]


def test_empty_batches_send_nothing():
    assert encode_wakeups("node-a", [], MAX) == []
    assert encode_wakeups("node-a", [("v", [])], MAX) == []


def test_many_videos_are_packed_into_few_payloads_under_the_limit():
    batches = [(f"video-{i}", comments(f"video-{i}", 1, 5, "x" * 100)) for i in range(100)]
    payloads = encode_wakeups("node-a", batches, MAX)  # ~75 KB in all
    sizes = [len(p.encode()) for p in payloads]
    assert all(size <= MAX for size in sizes)
    # packed greedily: every payload but the last is full up to less than one video item
    assert 1 < len(payloads) < len(batches)
    assert all(size > MAX - 800 for size in sizes[:-1]), sizes
    wakeups = decode_all(payloads)
    assert [(w.video_id, w.first, w.last) for w in wakeups] == [(v, 1, 5) for v, _ in batches]
    assert all(w.comments == cs for w, (_, cs) in zip(wakeups, batches, strict=True))


def test_a_batch_too_big_to_inline_falls_back_to_its_seq_range():
    big = comments("big", 41, 10, "m" * 1000)  # ~10 KB on its own
    small = comments("small", 7, 2)
    payloads = encode_wakeups("node-a", [("small", small), ("big", big)], MAX)
    assert all(len(p.encode()) <= MAX for p in payloads)
    wakeups = decode_all(payloads)
    assert wakeups == [WakeUp("small", 7, 8, small), WakeUp("big", 41, 50, None)]


@pytest.mark.parametrize("seed", range(5))
def test_every_payload_fits_even_with_four_byte_characters(seed):
    rng = random.Random(seed)
    batches = []
    for i in range(rng.randint(1, 60)):
        n = rng.randint(1, 8)
        msg = "🎉" * rng.choice([1, 50, 400, 1000, 2000])  # up to 8000 bytes per message
        batches.append((f"v{i}", comments(f"v{i}", rng.randint(1, 10**9), n, msg)))
    payloads = encode_wakeups("node-a", batches, MAX)
    for p in payloads:
        assert len(p.encode("utf-8")) <= MAX < PG_NOTIFY_LIMIT
    wakeups = decode_all(payloads)
    # every batch once, in order, with its range; inline ones carry exactly its comments
    assert [(w.video_id, w.first, w.last) for w in wakeups] == [
        (v, cs[0].seq, cs[-1].seq) for v, cs in batches
    ]
    for w, (_, cs) in zip(wakeups, batches, strict=True):
        assert w.comments is None or w.comments == cs
    assert any(w.comments is None for w in wakeups) or all(
        len(cs[0].message.encode()) * len(cs) < MAX for _, cs in batches
    )


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not json",
        "null",
        "[]",
        "{}",
        '{"n": "a"}',
        '{"w": []}',
        '{"n": "a", "w": 5}',
        '{"n": "a", "w": [["v", 1, 2]]}',
        '{"n": "a", "w": [["v", "one", 2, null]]}',
        '{"n": "a", "w": [["v", 1, 2, [[1, "u", "m"]]]]}',
        '{"n": "a", "w": [["v", 1, 2, 7]]}',
        '{"n": "a", "w": [null]}',
    ],
)
def test_malformed_payload_raises_value_error(payload):
    with pytest.raises(ValueError, match="malformed"):
        decode_wakeups(payload)


def test_channel_of_is_stable_and_in_range():
    assert channel_of("launch", 64) == f"{CHANNEL_PREFIX}{zlib.crc32(b'launch') % 64}"
    assert channel_of("launch", 64) == channel_of("launch", 64)
    for channels in (1, 7, 64):
        seen = {channel_of(f"video-{i}", channels) for i in range(1000)}
        assert seen == {f"{CHANNEL_PREFIX}{k}" for k in range(channels)}  # in range, all used
    assert channel_of("anything", 1) == f"{CHANNEL_PREFIX}0"


def test_every_payload_of_a_node_starts_with_its_head_and_no_other_nodes_does():
    batches = [(v, [Comment(v, 1, "u", "m" * 3000, "t")]) for v in ("a", "b", "c")]
    mine = encode_wakeups("abc123", batches, 7500)
    theirs = encode_wakeups("abc1234", batches, 7500)
    assert len(mine) > 1  # split over several payloads: each starts with the head
    assert all(p.startswith(own_payload_head("abc123")) for p in mine)
    assert not any(p.startswith(own_payload_head("abc123")) for p in theirs)


def test_display_names_ride_inline_only_when_present():
    named = Comment("v", 1, "u1", "hi", "2024-05-01T12:00:00.000001Z", "Ünï <name>")
    plain = Comment("v", 2, "u2", "yo", "2024-05-01T12:00:00.000002Z")
    (payload,) = encode_wakeups("node-a", [("v", [named, plain])], MAX)
    assert '"Ünï <name>"]' in payload and '"u2","yo","2024-05-01T12:00:00.000002Z"]' in payload
    _, (wakeup,) = decode_wakeups(payload)
    assert wakeup.comments == [named, plain]


def test_an_inline_comment_with_extra_fields_is_malformed():
    payload = '{"n":"x","w":[["v",1,1,[[1,"u","m","t","name","extra"]]]]}'
    with pytest.raises(ValueError, match="malformed"):
        decode_wakeups(payload)
