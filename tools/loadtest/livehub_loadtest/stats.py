"""PURE: percentile math for latency samples (integers, microseconds)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence; ``q`` in [0, 100].

    Nearest-rank never invents a value that was not measured, so p100 is the max and
    p99 of 100 samples is the 99th smallest. Returns None for no samples.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} out of range")
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100 * n))
    return sorted_values[rank - 1]


def summarize_us(samples: Iterable[int], quantiles: Sequence[float] = (50, 90, 99)) -> dict:
    """Summarize microsecond samples as milliseconds: count, pXX, max, mean."""
    values = sorted(samples)
    out: dict[str, float | int | None] = {"count": len(values)}
    for q in quantiles:
        p = percentile(values, q)
        out[f"p{q:g}_ms"] = None if p is None else round(p / 1000, 3)
    out["max_ms"] = round(values[-1] / 1000, 3) if values else None
    out["mean_ms"] = round(sum(values) / len(values) / 1000, 3) if values else None
    return out
