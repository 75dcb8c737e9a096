"""livehub/recovery.py: what a (re)connecting viewer gets before live frames."""

from __future__ import annotations

from livehub.core.model import Comment
from livehub.core.recovery import ResumePlan, plan_resume
from livehub.core.ring import Ring


def cs(first: int, last: int) -> list[Comment]:
    return [
        Comment("v", s, "u", f"m{s}", "2024-05-01T00:00:00.000000Z") for s in range(first, last + 1)
    ]


def ring_of(first: int, last: int, capacity: int = 100) -> Ring:
    ring = Ring(capacity)
    ring.extend(cs(first, last))
    return ring


def seqs(plan: ResumePlan) -> list[int]:
    return [c.seq for c in plan.replay]


def test_new_viewer_gets_the_newest_backlog_oldest_first():
    plan = plan_resume(None, 3, 50, ring_of(1, 50))
    assert seqs(plan) == [48, 49, 50] and plan.store_gap is None


def test_new_viewer_without_backlog_gets_only_live_frames():
    assert plan_resume(None, 0, 50, ring_of(1, 50)) == ResumePlan([], None)


def test_new_viewer_of_a_fresh_video_gets_nothing():
    assert plan_resume(None, 10, 0, Ring(10)) == ResumePlan([], None)


def test_resume_inside_the_ring_replays_exactly_the_missed_comments():
    plan = plan_resume(45, 10, 50, ring_of(1, 50))
    assert seqs(plan) == [46, 47, 48, 49, 50] and plan.store_gap is None


def test_resume_at_the_first_seq_the_ring_holds_is_still_served_from_the_ring():
    plan = plan_resume(10, 0, 60, ring_of(11, 60))
    assert seqs(plan) == list(range(11, 61)) and plan.store_gap is None


def test_resume_older_than_the_ring_reads_the_gap_from_the_store():
    ring = ring_of(1, 500, capacity=100)  # holds 401..500
    plan = plan_resume(100, 10, 500, ring)
    assert plan == ResumePlan([], (100, 500))


def test_resume_from_zero_with_an_evicted_start_reads_everything_from_the_store():
    assert plan_resume(0, 10, 500, ring_of(1, 500, capacity=100)) == ResumePlan([], (0, 500))


def test_resume_with_an_empty_ring_reads_the_store():
    assert plan_resume(3, 10, 7, Ring(10)) == ResumePlan([], (3, 7))


def test_resume_when_the_ring_lags_what_was_delivered_reads_the_store():
    # the ring must end at last_delivered or the replay would stop short
    assert plan_resume(45, 10, 60, ring_of(1, 50)) == ResumePlan([], (45, 60))


def test_resume_at_or_after_the_head_gets_nothing_before_live():
    ring = ring_of(1, 50)
    assert plan_resume(50, 10, 50, ring) == ResumePlan([], None)
    assert plan_resume(70, 10, 50, ring) == ResumePlan([], None)  # saw more on another node
    assert plan_resume(0, 10, 0, Ring(10)) == ResumePlan([], None)


def test_a_resume_past_the_head_continues_from_the_head():
    from livehub.core.recovery import resume_position

    assert resume_position(10, 3) == 3  # after a restore: the next comment is seq 4
    assert resume_position(3, 3) == 3
    assert resume_position(2, 7) == 2
