"""Frozen messages of a VideoActor's mailbox, and the one-shot reply slot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

from livehub.actors.subscriber import Subscription
from livehub.core.model import Comment, Draft, Entry
from livehub.core.wakeup import WakeUp

T = TypeVar("T")


class Reply(Generic[T]):
    """A one-shot answer from an actor to the task that asked (a tiny future)."""

    __slots__ = ("_callbacks", "_done", "_error", "_value", "abandoned")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self.abandoned = False  # the asker stopped waiting (cancelled)
        self._callbacks: list = []

    def set(self, value: T) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()
            self._run_callbacks()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()
            self._run_callbacks()

    def add_done_callback(self, fn) -> None:
        """Call ``fn(self)`` once answered (now, if it already is): for work that
        outlives the task that asked."""
        if self._done.is_set():
            fn(self)
        else:
            self._callbacks.append(fn)

    def _run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def value_nowait(self) -> T | None:
        """The answer if there is one (None: none yet, or a failure)."""
        return self._value if self._done.is_set() and self._error is None else None

    async def wait(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Post:
    draft: Draft
    reply: Reply[Comment] = field(default_factory=Reply)


@dataclass(frozen=True)
class Subscribed:
    """The answer to Subscribe: frames to send first, then live frames from ``sub``.

    ``replay`` holds entries after the requested seq that the ring still had;
    ``store_gap`` is ``(after, until)`` when seqs in that range must first be read from
    Postgres (the ring no longer reaches back that far). ``pinned`` is the current
    pin's event data (None: nothing pinned), which a new viewer gets at connect.
    """

    sub: Subscription
    replay: list[Entry]
    store_gap: tuple[int, int] | None
    last_delivered: int
    pinned: str | None = None


@dataclass(frozen=True, eq=False)
class Subscribe:
    after: int | None  # resume after this seq; None: a new viewer
    backlog: int  # new viewers: this many recent comments first
    reply: Reply[Subscribed] = field(default_factory=Reply)


@dataclass(frozen=True, eq=False)
class Unsubscribe:
    sub: Subscription


@dataclass(frozen=True)
class Committed:
    """Comments (or moderation events) this node just committed, in seq order."""

    comments: list[Entry]


@dataclass(frozen=True)
class Resync:
    """Check the store for anything not yet delivered (bus reconnect, periodic check).

    ``head`` is the counter value when the caller already read it.
    """

    head: int | None = None


Message = Subscribe | Unsubscribe | Committed | WakeUp | Resync
"""``WakeUp`` (``core.wakeup``): seqs ``first..last`` exist (another node's commit, or a
moderation action); comments inline or None."""
