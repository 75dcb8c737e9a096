"""The delivery audit: gaps, duplicates, regressions, seq contiguity."""

from livehub.loadtest.audit import Expected, audit_viewer, merge_audits
from livehub.loadtest.sse import pack_key

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
