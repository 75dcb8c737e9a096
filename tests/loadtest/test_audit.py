"""The delivery audit: gaps, duplicates, regressions, seq contiguity."""

from livehub_loadtest.audit import Expected, audit_viewer, merge_audits
from livehub_loadtest.sse import pack_key

KEYS = [pack_key(p, n) for n in range(3) for p in range(2)]  # p0n0 p1n0 p0n1 p1n1 ...
SEQS = tuple(range(1, len(KEYS) + 1))
EXPECTED = Expected(frozenset(KEYS), SEQS)


def test_everything_once_in_order_passes():
    audit = audit_viewer(KEYS, SEQS, EXPECTED, check_contiguous=True)
    assert audit.ok and audit.received == audit.expected == 6


def test_gap_is_missing_and_a_seq_gap():
    keys, seqs = KEYS[:2] + KEYS[3:], SEQS[:2] + SEQS[3:]
    audit = audit_viewer(keys, seqs, EXPECTED, check_contiguous=True)
    assert (audit.missing, audit.seq_gaps, audit.duplicates) == (1, 1, 0)
    assert audit.seq_mismatch == 1 and not audit.ok


def test_duplicate_is_counted_and_regresses():
    keys, seqs = [*KEYS[:4], KEYS[3], *KEYS[4:]], [*SEQS[:4], SEQS[3], *SEQS[4:]]
    audit = audit_viewer(keys, seqs, EXPECTED, check_contiguous=True)
    assert audit.duplicates == 1 and audit.missing == 0
    assert audit.order_regressions == 2  # the poster's n and the id both went back


def test_swapped_pair_is_a_regression_not_a_loss():
    keys = [KEYS[2], KEYS[0], *KEYS[1:2], *KEYS[3:]]
    audit = audit_viewer(keys, [], EXPECTED, check_contiguous=False)
    assert audit.order_regressions == 1 and audit.missing == 0 and audit.duplicates == 0


def test_unexpected_message():
    audit = audit_viewer([*KEYS, pack_key(9, 0)], [], EXPECTED, check_contiguous=False)
    assert audit.unexpected == 1 and not audit.ok


def test_nchan_ids_are_not_checked_for_contiguity():
    ids = [
        (100 << 24) | 0,
        (100 << 24) | 1,
        (101 << 24) | 0,
        (101 << 24) | 5,
        (102 << 24),
        103 << 24,
    ]
    audit = audit_viewer(KEYS, ids, Expected(frozenset(KEYS)), check_contiguous=False)
    assert audit.ok


def test_merge_counts_failed_viewers():
    good = audit_viewer(KEYS, SEQS, EXPECTED, check_contiguous=True)
    bad = audit_viewer(KEYS[:-1], SEQS[:-1], EXPECTED, check_contiguous=True)
    totals = merge_audits([good, bad])
    assert totals["viewers"] == 2 and totals["viewers_failed"] == 1 and totals["missing"] == 1


def test_a_post_cut_in_flight_may_arrive_or_not():
    cut = pack_key(0, 3)
    expected = Expected(frozenset(KEYS), SEQS, frozenset({cut}))
    arrived = audit_viewer([*KEYS, cut], (*SEQS, 7), expected, check_contiguous=True)
    assert arrived.ok and arrived.unexpected == 0 and arrived.seq_mismatch == 0
    assert audit_viewer(KEYS, SEQS, expected, check_contiguous=True).ok
    # but a second unknown seq is still a mismatch
    other = pack_key(1, 9)
    extra = audit_viewer([*KEYS, cut, other], (*SEQS, 7, 8), expected, check_contiguous=True)
    assert extra.unexpected == 1 and extra.seq_mismatch == 1 and not extra.ok


# -- deletions during the run (livehub --delete-fraction) --
# comments seq 1..6; the deleter deletes seq 3 (KEYS[2]) at t=1000: event seq 7
DELETED = Expected(
    frozenset(KEYS),
    SEQS,
    deleted_at_ns={KEYS[2]: 1000},
    deleted_seqs=frozenset({3}),
    deletions_max=1,
)


def test_a_viewer_that_saw_a_deleted_comment_gets_its_deletion_and_passes():
    ids = [*SEQS, 7]
    audit = audit_viewer(KEYS, ids, DELETED, True, deletions=[(7, 3)], conn_marks=[(0, 0)])
    assert audit.ok and audit.tombstones == 0 and audit.received == 6, audit


def test_a_resumer_gets_a_tombstone_instead_of_the_text_and_passes():
    keys = [k for k in KEYS if k != KEYS[2]]
    ids = [*SEQS, 7]  # seq 3 still arrives: as a tombstone
    audit = audit_viewer(
        keys, ids, DELETED, True, deletions=[(3, 3), (7, 3)], conn_marks=[(0, 0), (5000, 2)]
    )
    assert audit.ok and audit.tombstones == 1 and audit.missing == 0, audit


def test_a_missing_deletion_event_fails():
    audit = audit_viewer(KEYS, SEQS, DELETED, True, deletions=[], conn_marks=[(0, 0)])
    assert audit.deletions_missing == 1 and not audit.ok


def test_deleted_text_on_a_connection_opened_after_the_deletion_fails():
    # the viewer reconnected at t = 1000 + 1 s, after 2 comments, and still got seq 3's text
    marks = [(0, 0), (1000 + 1_000_000_000, 2)]
    audit = audit_viewer(KEYS, [*SEQS, 7], DELETED, True, deletions=[(7, 3)], conn_marks=marks)
    assert audit.deleted_text_resumed == 1 and not audit.ok


def test_a_tombstone_for_a_comment_nobody_deleted_or_extra_deletion_events_fail():
    keys = [k for k in KEYS if k != KEYS[1]]
    audit = audit_viewer(keys, SEQS, EXPECTED, True, deletions=[(2, 2)], conn_marks=[(0, 0)])
    assert audit.seq_mismatch >= 1 and not audit.ok
    audit = audit_viewer(
        KEYS, [*SEQS, 7, 8], DELETED, True, deletions=[(7, 3), (8, 3)], conn_marks=[(0, 0)]
    )
    assert audit.seq_mismatch == 1 and not audit.ok
