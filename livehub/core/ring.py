"""PURE: the bounded ring of a video's most recent comments. Not task-safe by design:
only its VideoActor touches it."""

from __future__ import annotations

from collections import deque

from livehub.core.model import Comment, Entry, Event, pinned_data, tombstone


class Ring:
    """The last ``capacity`` delivered stream entries, contiguous in seq."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[Entry] = deque(maxlen=max(1, capacity))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def first_seq(self) -> int | None:
        return self._items[0].seq if self._items else None

    @property
    def last_seq(self) -> int | None:
        return self._items[-1].seq if self._items else None

    def extend(self, comments: list[Entry]) -> None:
        """Append comments that continue the ring; a jump resets it (no holes inside)."""
        for c in comments:
            if self._items and c.seq != self._items[-1].seq + 1:
                self._items.clear()
            self._items.append(c)

    def redact(self, target: int) -> None:
        """Comment ``target`` was deleted: from now on a replay gives its tombstone,
        and the pins that carried its text pin nothing (as replays from Postgres do)."""
        items = self._items
        if not items or target > items[-1].seq:
            return
        first = items[0].seq
        if target >= first:
            c = items[target - first]
            if type(c) is Comment:
                items[target - first] = tombstone(c.video_id, c.seq, c.created_at)
        for i, e in enumerate(items):
            if type(e) is Event and e.kind == "pinned" and e.target == target:
                blank = pinned_data(e.video_id, None)
                items[i] = Event(e.video_id, e.seq, "pinned", target, blank, e.created_at)

    def after(self, seq: int) -> list[Entry] | None:
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

    def newest(self, n: int) -> list[Entry]:
        """Up to ``n`` most recent comments, oldest first."""
        if n <= 0:
            return []
        n = min(n, len(self._items))
        return [self._items[i] for i in range(len(self._items) - n, len(self._items))]
