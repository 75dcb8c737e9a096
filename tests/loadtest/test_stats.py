"""Nearest-rank percentiles."""

import pytest
from livehub_loadtest.stats import percentile, summarize_us


def test_nearest_rank_on_1_to_100():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1


def test_small_samples_never_invent_values():
    assert percentile([7], 99) == 7
    assert percentile([1, 2], 50) == 1
    assert percentile([1, 2], 51) == 2


def test_empty_and_out_of_range():
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summary_in_milliseconds():
    summary = summarize_us([3000, 1000, 2000, 4000])
    assert summary["count"] == 4
    assert summary["p50_ms"] == 2.0 and summary["p99_ms"] == 4.0 and summary["max_ms"] == 4.0
    assert summary["mean_ms"] == 2.5
    assert summarize_us([])["p50_ms"] is None
