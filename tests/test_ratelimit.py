"""livehub.core.ratelimit: token bucket, slow mode and their combination, on a fake clock."""

from __future__ import annotations

import pytest

from livehub.core.ratelimit import PostLimiter, Refusal, SlowMode, TokenBucket, parse_per_video


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def drain(bucket: TokenBucket, key: str) -> int:
    taken = 0
    while bucket.wait_seconds(key) == 0:
        bucket.take(key)
        taken += 1
        assert taken < 10_000
    return taken


def test_a_new_user_has_a_full_burst_then_waits_one_token(clock):
    bucket = TokenBucket(5, 10, clock)
    assert drain(bucket, "u") == 10
    assert bucket.wait_seconds("u") == pytest.approx(0.2)


def test_tokens_refill_at_the_rate(clock):
    bucket = TokenBucket(5, 10, clock)
    drain(bucket, "u")
    clock.advance(0.1)
    assert bucket.wait_seconds("u") == pytest.approx(0.1)
    clock.advance(0.1)
    assert bucket.wait_seconds("u") == 0
    bucket.take("u")
    assert bucket.wait_seconds("u") == pytest.approx(0.2)


def test_a_long_pause_saves_up_no_more_than_the_burst(clock):
    bucket = TokenBucket(5, 10, clock)
    drain(bucket, "u")
    clock.advance(3600)
    assert drain(bucket, "u") == 10


def test_sustained_rate_is_the_configured_rate(clock):
    bucket = TokenBucket(5, 10, clock)
    drain(bucket, "u")
    accepted = 0
    for _ in range(1000):  # 10 s in 10 ms steps
        clock.advance(0.01)
        if bucket.wait_seconds("u") == 0:
            bucket.take("u")
            accepted += 1
    assert accepted == pytest.approx(50, abs=1)


def test_users_do_not_share_a_bucket(clock):
    bucket = TokenBucket(1, 2, clock)
    drain(bucket, "a")
    assert bucket.wait_seconds("a") > 0
    assert drain(bucket, "b") == 2


def test_wait_seconds_takes_nothing(clock):
    bucket = TokenBucket(1, 1, clock)
    for _ in range(5):
        assert bucket.wait_seconds("u") == 0
    bucket.take("u")
    assert bucket.wait_seconds("u") == pytest.approx(1.0)


def test_a_clock_going_backwards_never_adds_tokens(clock):
    bucket = TokenBucket(1, 2, clock)
    drain(bucket, "u")
    clock.advance(-100)
    assert bucket.wait_seconds("u") == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_limits_are_refused(clock, rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, clock)


def test_bucket_memory_is_bounded_and_sweeps_full_buckets_first(clock):
    bucket = TokenBucket(1, 2, clock, max_keys=100)
    for i in range(100):
        bucket.take(f"idle{i}")
    clock.advance(10)  # every idle bucket is full again: forgetting it changes nothing
    bucket.take("busy")
    bucket.take("busy")
    assert len(bucket) == 1  # the full buckets were swept, the busy one kept
    assert bucket.wait_seconds("busy") > 0
    for i in range(500):
        bucket.take(f"new{i}")
        assert len(bucket) <= 100


def test_a_limited_user_stays_limited_while_others_churn(clock):
    bucket = TokenBucket(1, 2, clock, max_keys=50)
    drain(bucket, "spammer")
    for i in range(40):
        bucket.take(f"other{i}")
    assert bucket.wait_seconds("spammer") > 0


def test_slow_mode_spaces_one_users_posts_on_one_video(clock):
    slow = SlowMode(10, {}, clock)
    assert slow.wait_seconds("u", "v") == 0
    slow.take("u", "v")
    clock.advance(4)
    assert slow.wait_seconds("u", "v") == pytest.approx(6)
    assert slow.wait_seconds("u", "other") == 0
    assert slow.wait_seconds("someone", "v") == 0
    clock.advance(6)
    assert slow.wait_seconds("u", "v") == 0


def test_slow_mode_per_video_overrides_the_default(clock):
    slow = SlowMode(0, {"calm": 30}, clock)
    slow.take("u", "busy")
    slow.take("u", "calm")
    assert slow.wait_seconds("u", "busy") == 0
    assert slow.wait_seconds("u", "calm") == pytest.approx(30)
    assert len(slow) == 1  # videos without slow mode remember nothing


def test_slow_mode_memory_is_bounded(clock):
    slow = SlowMode(5, {}, clock, max_keys=10)
    for i in range(100):
        slow.take(f"u{i}", "v")
        assert len(slow) <= 10
    assert slow.wait_seconds("u99", "v") == pytest.approx(5)


def test_limiter_refuses_by_rate_then_by_slow_mode(clock):
    limiter = PostLimiter(TokenBucket(1, 1, clock), SlowMode(0, {"slow": 5}, clock))
    assert limiter.acquire("u", "v") is None
    refusal = limiter.acquire("u", "v")
    assert refusal == Refusal("rate", pytest.approx(1.0))
    clock.advance(1)
    assert limiter.acquire("u", "slow") is None
    clock.advance(1)
    refusal = limiter.acquire("u", "slow")
    assert refusal.reason == "slow_mode"
    assert refusal.retry_after_seconds == pytest.approx(4)


def test_a_refused_post_costs_no_token(clock):
    limiter = PostLimiter(TokenBucket(1, 2, clock), SlowMode(0, {"slow": 60}, clock))
    assert limiter.acquire("u", "slow") is None
    for _ in range(5):
        assert limiter.acquire("u", "slow").reason == "slow_mode"
    assert limiter.acquire("u", "elsewhere") is None  # the second token is still there


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", {}),
        ("a=5", {"a": 5.0}),
        (" a = 5 , b=0.5,", {"a": 5.0, "b": 0.5}),
        ("a=0", {"a": 0.0}),
    ],
)
def test_parse_per_video(spec, expected):
    assert parse_per_video(spec) == expected


@pytest.mark.parametrize("spec", ["a", "=5", "a=x", "a=-1", "a=nan"])
def test_parse_per_video_refuses_nonsense(spec):
    with pytest.raises(ValueError):
        parse_per_video(spec)
