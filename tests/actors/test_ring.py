"""livehub/actors/ring.py: a video's most recent comments, contiguous in seq."""

from __future__ import annotations

from livehub.core.model import Comment
from livehub.core.ring import Ring


def cs(first: int, last: int) -> list[Comment]:
    return [
        Comment("v", s, "u", f"m{s}", "2024-05-01T00:00:00.000000Z") for s in range(first, last + 1)
    ]


def seqs(comments: list[Comment] | None) -> list[int] | None:
    return None if comments is None else [c.seq for c in comments]


def test_empty_ring():
    ring = Ring(5)
    assert len(ring) == 0
    assert ring.first_seq is None and ring.last_seq is None
    assert ring.after(0) is None  # holds nothing, so cannot serve anything
    assert ring.newest(3) == []


def test_keeps_only_the_last_capacity_comments():
    ring = Ring(5)
    ring.extend(cs(1, 3))
    assert (len(ring), ring.first_seq, ring.last_seq) == (3, 1, 3)
    ring.extend(cs(4, 12))
    assert (len(ring), ring.first_seq, ring.last_seq) == (5, 8, 12)
    assert seqs(ring.newest(100)) == [8, 9, 10, 11, 12]


def test_after_returns_the_tail_or_none_once_evicted():
    ring = Ring(5)
    ring.extend(cs(1, 12))  # holds 8..12
    assert seqs(ring.after(7)) == [8, 9, 10, 11, 12]  # needs 8: still there
    assert seqs(ring.after(10)) == [11, 12]
    assert ring.after(6) is None  # needs 7: evicted
    assert ring.after(0) is None
    assert ring.after(12) == []  # up to date
    assert ring.after(50) == []  # ahead of the ring (another node delivered more)


def test_after_returns_the_very_comment_objects_in_order():
    ring = Ring(3)
    batch = cs(1, 3)
    ring.extend(batch)
    assert ring.after(0) == batch


def test_a_jump_in_seq_resets_the_ring_so_it_never_holds_a_hole():
    ring = Ring(10)
    ring.extend(cs(1, 5))
    ring.extend(cs(9, 10))
    assert (ring.first_seq, ring.last_seq, len(ring)) == (9, 10, 2)
    assert ring.after(5) is None  # 6..8 were never in the ring: the caller must read the store
    assert seqs(ring.after(8)) == [9, 10]


def test_a_jump_inside_one_extend_keeps_only_what_follows_it():
    ring = Ring(10)
    ring.extend([*cs(1, 3), *cs(7, 8)])
    assert seqs(ring.after(6)) == [7, 8]
    assert ring.after(3) is None


def test_newest_is_oldest_first_and_bounded():
    ring = Ring(4)
    ring.extend(cs(1, 6))  # holds 3..6
    assert seqs(ring.newest(2)) == [5, 6]
    assert seqs(ring.newest(4)) == [3, 4, 5, 6]
    assert seqs(ring.newest(10)) == [3, 4, 5, 6]
    assert ring.newest(0) == [] and ring.newest(-1) == []


def test_capacity_below_one_still_keeps_the_latest_comment():
    ring = Ring(0)
    ring.extend(cs(1, 3))
    assert seqs(ring.newest(5)) == [3]
    assert seqs(ring.after(2)) == [3]
