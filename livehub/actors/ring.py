"""PURE: the bounded ring of a video's most recent comments. Not task-safe by design:
only its VideoActor touches it."""

from __future__ import annotations

from collections import deque

from ..model import Comment


class Ring:
    """The last ``capacity`` delivered comments, contiguous in seq."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[Comment] = deque(maxlen=max(1, capacity))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def first_seq(self) -> int | None:
        return self._items[0].seq if self._items else None

    @property
    def last_seq(self) -> int | None:
        return self._items[-1].seq if self._items else None

    def extend(self, comments: list[Comment]) -> None:
        """Append comments that continue the ring; a jump resets it (no holes inside)."""
        for c in comments:
            if self._items and c.seq != self._items[-1].seq + 1:
                self._items.clear()
            self._items.append(c)

    def after(self, seq: int) -> list[Comment] | None:
        """Comments with seq > ``seq``, or None when the ring no longer holds seq + 1."""
        if not self._items:
            return None
        first = self._items[0].seq
        last = self._items[-1].seq
        if seq >= last:
            return []
        if seq + 1 < first:
            return None
        start = seq + 1 - first
        return [self._items[i] for i in range(start, len(self._items))]

    def newest(self, n: int) -> list[Comment]:
        """Up to ``n`` most recent comments, oldest first."""
        if n <= 0:
            return []
        n = min(n, len(self._items))
        return [self._items[i] for i in range(len(self._items) - n, len(self._items))]
