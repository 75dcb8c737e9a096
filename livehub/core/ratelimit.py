"""PURE: posting limits with an injected clock. Never imports trio, quart or asyncpg.

- :class:`TokenBucket` per key (a user): ``rate`` tokens per second, at most
  ``burst`` saved up; a post takes one token.
- Slow mode: a minimum interval between one user's posts on one video.
- :class:`PostLimiter` checks both and takes nothing when either refuses, so a
  refused post never costs the poster a token.

Memory is bounded: when a table passes ``max_keys`` entries, those that no longer
matter (a full bucket, an interval that has passed) are swept; if every entry still
matters the oldest are dropped (which only ever lets a post through, never blocks one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Clock = Callable[[], float]

MAX_KEYS = 100_000  # users (or user x video pairs) remembered per node before sweeping


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBucket:
    """Token buckets keyed by any hashable (here: user ids)."""

    def __init__(self, rate: float, burst: int, clock: Clock, max_keys: int = MAX_KEYS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[object, _Bucket] = {}

    def wait_seconds(self, key: object) -> float:
        """Seconds until ``key`` may take a token (0.0: now). Takes nothing."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: object) -> None:
        """Take one token (call after :meth:`wait_seconds` returned 0)."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._sweep(now)
        self._buckets.pop(key, None)  # re-insert: dict order stays least-recent-first
        self._buckets[key] = _Bucket(max(0.0, tokens - 1.0), now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: object, now: float) -> float:
        b = self._buckets.get(key)
        if b is None:
            return float(self.burst)
        return min(float(self.burst), b.tokens + max(0.0, now - b.at) * self.rate)

    def _sweep(self, now: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.burst]
        for k in full:
            del self._buckets[k]
        _drop_oldest(self._buckets, self._max_keys)


class SlowMode:
    """At most one post per ``interval`` per (user, video); intervals per video."""

    def __init__(
        self,
        default_seconds: float,
        per_video: Mapping[str, float],
        clock: Clock,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.default_seconds = default_seconds
        self.per_video = dict(per_video)
        self._clock = clock
        self._max_keys = max_keys
        self._last: dict[tuple[str, str], float] = {}
        # a video's own setting (chat settings, modcache.py) over the configured ones
        self.override: Callable[[str], float | None] = lambda video_id: None

    def configured(self, video_id: str) -> float:
        """The interval from the server's settings (per video, else the default)."""
        return self.per_video.get(video_id, self.default_seconds)

    def interval(self, video_id: str) -> float:
        seconds = self.override(video_id)
        return self.configured(video_id) if seconds is None else seconds

    def wait_seconds(self, user_id: str, video_id: str) -> float:
        interval = self.interval(video_id)
        if interval <= 0:
            return 0.0
        last = self._last.get((user_id, video_id))
        if last is None:
            return 0.0
        return max(0.0, last + interval - self._clock())

    def take(self, user_id: str, video_id: str) -> None:
        if self.interval(video_id) <= 0:
            return
        now = self._clock()
        key = (user_id, video_id)
        if key not in self._last and len(self._last) >= self._max_keys:
            stale = [k for k, t in self._last.items() if t + self.interval(k[1]) <= now]
            for k in stale:
                del self._last[k]
            _drop_oldest(self._last, self._max_keys)
        self._last.pop(key, None)  # re-insert: dict order stays oldest-first
        self._last[key] = now

    def __len__(self) -> int:
        return len(self._last)


@dataclass(frozen=True)
class Refusal:
    """Why a post was refused and when to try again."""

    reason: str  # "rate" or "slow_mode"
    retry_after_seconds: float


class PostLimiter:
    """The rate limit and slow mode together, as the API applies them."""

    def __init__(self, bucket: TokenBucket, slow: SlowMode) -> None:
        self.bucket = bucket
        self.slow = slow

    def acquire(self, user_id: str, video_id: str) -> Refusal | None:
        """None: the post may go ahead (and has been counted); else why not."""
        wait = self.bucket.wait_seconds(user_id)
        if wait > 0:
            return Refusal("rate", wait)
        wait = self.slow.wait_seconds(user_id, video_id)
        if wait > 0:
            return Refusal("slow_mode", wait)
        self.bucket.take(user_id)
        self.slow.take(user_id, video_id)
        return None


def parse_per_video(spec: str) -> dict[str, float]:
    """``"a=5,b=0.5"`` -> ``{"a": 5.0, "b": 0.5}``.

    Raises:
        ValueError: an entry is not ``video=seconds`` with seconds >= 0.
    """
    out: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        video, sep, seconds = part.partition("=")
        if not sep or not video.strip():
            raise ValueError(f"slow mode entry {part!r} is not video=seconds")
        value = float(seconds)
        if value < 0 or value != value:
            raise ValueError(f"slow mode entry {part!r}: seconds must be >= 0")
        out[video.strip()] = value
    return out


def _drop_oldest(table: dict, max_keys: int) -> None:
    excess = len(table) - max_keys + 1
    if excess > 0:
        for k in list(table)[:excess]:
            del table[k]
