"""PURE: can a resuming viewer be served from the ring, or must it read the store?

The centrifuge ``isStreamRecovered`` analogue, over plain seq positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from livehub.core.model import Comment
from livehub.core.ring import Ring


@dataclass(frozen=True)
class ResumePlan:
    replay: list[Comment]  # from the ring, oldest first
    store_gap: tuple[int, int] | None  # (after, until]: read from Postgres first


def plan_resume(after: int | None, backlog: int, last_delivered: int, ring: Ring) -> ResumePlan:
    """What a viewer gets before live frames, given what the actor has delivered.

    - new viewer (``after`` None): the newest ``backlog`` comments of the ring;
    - ``after`` >= ``last_delivered``: nothing (a viewer that saw more than this node
      has delivered yet just skips seqs it already has when they arrive);
    - the ring still holds ``after + 1``: replay from the ring;
    - otherwise: read ``(after, last_delivered]`` from Postgres.
    """
    if after is None:
        return ResumePlan(ring.newest(backlog), None)
    if after >= last_delivered:
        return ResumePlan([], None)
    from_ring = ring.after(after)
    if from_ring is not None and ring.last_seq == last_delivered:
        return ResumePlan(from_ring, None)
    return ResumePlan([], (after, last_delivered))


def resume_position(after: int, head: int) -> int:
    """Where a viewer resuming after ``after`` continues, given the video's ``head``
    (its newest seq in Postgres).

    A position past the head cannot have been seen: the database was restored from a
    backup (its counter is behind what viewers saw) or the client made it up. The
    viewer continues from the head, so the comments stored from now on, which get
    the seqs after it, reach it; trusting ``after`` would skip them silently.
    """
    return min(after, head)
