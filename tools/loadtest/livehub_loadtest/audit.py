"""PURE: the delivery audit of one viewer against what was accepted for its video.

A viewer must receive every accepted comment of its video exactly once, in order:
no missing, no duplicates, no unexpected messages, and its event ids never go back.
For livehub, ids are the video's ``seq`` and must also be contiguous and equal to the
seqs the server returned when it accepted the posts.

With deletions during the run (``--delete-fraction``), a livehub stream holds
comments and ``deleted`` events in one seq order, so the ids stay contiguous over
both. A deleted comment's seq still arrives, as the comment (the viewer saw it before
the deletion) or as a tombstone (a ``deleted`` event whose id is that seq: the viewer
resumed past it); so a deleted comment may be missing from the messages, but every
viewer must get a ``deleted`` event for each deletion, and a viewer must never get
the text of a comment on a connection it opened after that comment's deletion was
acknowledged (``deleted_text_resumed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise

from livehub_loadtest.sse import unpack_key


@dataclass(frozen=True)
class Expected:
    """What a viewer of one video must receive: message keys and (livehub) seqs."""

    keys: frozenset[int]
    seqs: tuple[int, ...] = ()  # ascending; empty when the target has no seqs (nchan)
    # posts cut in flight by the run's bound: may arrive or not (their seqs are unknown)
    maybe: frozenset[int] = frozenset()
    # livehub deletions: key -> when its DELETE was answered 204 (wall ns); their seqs
    deleted_at_ns: Mapping[int, int] = field(default_factory=dict)
    deleted_seqs: frozenset[int] = frozenset()
    # deletion events of the video at most (each has a seq no 201 gave)
    deletions_max: int = 0
    # DELETEs that got no answer: they may or may not have happened
    maybe_deleted: frozenset[int] = frozenset()
    maybe_deleted_seqs: frozenset[int] = frozenset()


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
    deletions_missing: int = 0  # deleted comments whose deleted event never came
    deleted_text_resumed: int = 0  # deleted text received on a connection opened after
    tombstones: int = 0  # deleted comments received without their text (not an error)

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.duplicates
            or self.unexpected
            or self.order_regressions
            or self.seq_gaps
            or self.seq_mismatch
            or self.deletions_missing
            or self.deleted_text_resumed
        )

    def as_dict(self) -> dict:
        return asdict(self)


# A deletion reaches a node's actors before its 204 on that node; on another node it
# lands a wake-up later. A connection opened this long after the 204 must not get text.
DELETE_VISIBLE_MARGIN_NS = 200_000_000


def audit_viewer(
    keys: Sequence[int],
    ids: Sequence[int],
    expected: Expected,
    check_contiguous: bool,
    deletions: Sequence[tuple[int, int]] = (),
    conn_marks: Sequence[tuple[int, int]] = (),
) -> ViewerAudit:
    """Audit one viewer.

    Args:
        keys: the packed message keys received, in arrival order.
        ids: the orderable event ids received (``sse.order_key``), in arrival order,
            comments and moderation events alike.
        expected: what was accepted for the viewer's video while it was connected.
        check_contiguous: ids are livehub seqs, so they must step by exactly one.
        deletions: ``(event id, deleted seq)`` of each ``deleted`` event received.
        conn_marks: ``(connected at ns, len(keys) then)`` of each connection.
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
    tombstones = {target for event_id, target in deletions if event_id == target}
    events = {event_id for event_id, target in deletions if event_id != target}
    deleted_targets = {target for event_id, target in deletions if event_id != target}
    may_delete = expected.deleted_seqs | expected.maybe_deleted_seqs
    seq_mismatch = 0
    if check_contiguous and expected.seqs:
        got = set(ids)
        extra = len(got - set(expected.seqs) - events)
        # a cut post that arrived brings a seq the 201 responses never told us
        allowed = len(unique & expected.maybe)
        seq_mismatch = len(set(expected.seqs) - got) + max(0, extra - allowed)
        seq_mismatch += max(0, len(events) - expected.deletions_max)
        # a tombstone for a comment nobody deleted
        seq_mismatch += len(tombstones - may_delete)
    gone = frozenset(expected.deleted_at_ns) | expected.maybe_deleted
    return ViewerAudit(
        expected=len(expected.keys),
        received=len(keys),
        missing=len(expected.keys - unique - gone),
        duplicates=len(keys) - len(unique),
        unexpected=len(unique - expected.keys - expected.maybe),
        order_regressions=regressions,
        seq_gaps=seq_gaps,
        seq_mismatch=seq_mismatch,
        deletions_missing=len(expected.deleted_seqs - deleted_targets),
        deleted_text_resumed=_text_after_deletion(keys, expected.deleted_at_ns, conn_marks),
        tombstones=len(tombstones),
    )


def _text_after_deletion(
    keys: Sequence[int], deleted_at_ns: Mapping[int, int], conn_marks: Sequence[tuple[int, int]]
) -> int:
    """Deleted comments whose text came on a connection opened after their deletion."""
    if not deleted_at_ns or not conn_marks:
        return 0
    leaks = 0
    mark = 0
    for i, key in enumerate(keys):
        while mark + 1 < len(conn_marks) and conn_marks[mark + 1][1] <= i:
            mark += 1
        at = deleted_at_ns.get(key)
        if at is not None and conn_marks[mark][0] > at + DELETE_VISIBLE_MARGIN_NS:
            leaks += 1
    return leaks


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
        "deletions_missing",
        "deleted_text_resumed",
        "tombstones",
    ]
    totals = {name: sum(getattr(a, name) for a in audits) for name in fields}
    totals["viewers"] = len(audits)
    totals["viewers_failed"] = sum(1 for a in audits if not a.ok)
    return totals
