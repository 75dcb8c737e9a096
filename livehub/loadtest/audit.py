"""PURE: the delivery audit of one viewer against what was accepted for its video.

A viewer must receive every accepted comment of its video exactly once, in order:
no missing, no duplicates, no unexpected messages, and its event ids never go back.
For livehub, ids are the video's ``seq`` and must also be contiguous and equal to the
seqs the server returned when it accepted the posts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise

from livehub.loadtest.sse import unpack_key


@dataclass(frozen=True)
class Expected:
    """What a viewer of one video must receive: message keys and (livehub) seqs."""

    keys: frozenset[int]
    seqs: tuple[int, ...] = ()  # ascending; empty when the target has no seqs (nchan)
    # posts cut in flight by the run's bound: may arrive or not (their seqs are unknown)
    maybe: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ViewerAudit:
    expected: int
    received: int
    missing: int
    duplicates: int
    unexpected: int  # this run's messages that were not accepted for this video
    order_regressions: int  # a poster's n (or an event id) went backwards
    seq_gaps: int  # livehub: places where the next seq was not previous + 1
    seq_mismatch: int  # livehub: seqs received that the 201 responses did not give

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.duplicates
            or self.unexpected
            or self.order_regressions
            or self.seq_gaps
            or self.seq_mismatch
        )

    def as_dict(self) -> dict:
        return asdict(self)


def audit_viewer(
    keys: Sequence[int],
    ids: Sequence[int],
    expected: Expected,
    check_contiguous: bool,
) -> ViewerAudit:
    """Audit one viewer.

    Args:
        keys: the packed message keys received, in arrival order.
        ids: the orderable event ids received (``sse.order_key``), in arrival order.
        expected: what was accepted for the viewer's video while it was connected.
        check_contiguous: ids are livehub seqs, so they must step by exactly one.
    """
    unique = set(keys)
    last_n: dict[int, int] = {}
    regressions = 0
    for key in keys:
        poster, n = unpack_key(key)
        if n <= last_n.get(poster, -1):
            regressions += 1
        last_n[poster] = n
    seq_gaps = 0
    for prev, cur in pairwise(ids):
        if cur <= prev:
            regressions += 1
        elif check_contiguous and cur != prev + 1:
            seq_gaps += 1
    seq_mismatch = 0
    if check_contiguous and expected.seqs:
        got = set(ids)
        extra = len(got - set(expected.seqs))
        # a cut post that arrived brings a seq the 201 responses never told us
        allowed = len(unique & expected.maybe)
        seq_mismatch = len(set(expected.seqs) - got) + max(0, extra - allowed)
    return ViewerAudit(
        expected=len(expected.keys),
        received=len(keys),
        missing=len(expected.keys - unique),
        duplicates=len(keys) - len(unique),
        unexpected=len(unique - expected.keys - expected.maybe),
        order_regressions=regressions,
        seq_gaps=seq_gaps,
        seq_mismatch=seq_mismatch,
    )


def merge_audits(audits: Sequence[ViewerAudit]) -> dict:
    """Totals over viewers, plus how many viewers failed."""
    fields = [
        "expected",
        "received",
        "missing",
        "duplicates",
        "unexpected",
        "order_regressions",
        "seq_gaps",
        "seq_mismatch",
    ]
    totals = {name: sum(getattr(a, name) for a in audits) for name in fields}
    totals["viewers"] = len(audits)
    totals["viewers_failed"] = sum(1 for a in audits if not a.ok)
    return totals
