"""What the actors need from the rest of the node, as small Protocols, in one place.

The actors import no database, HTTP or process code: a node hands them objects that
fit these (``livehub/db`` the store and the bus, ``livehub/http/transport.py`` the
direct sink, the registry the node hooks), and the actor tests hand them fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from livehub.core.errors import LivehubError
from livehub.core.model import Comment, Draft, Entry

if TYPE_CHECKING:
    from livehub.actors.messages import Reply
    from livehub.actors.subscriber import Frame
    from livehub.actors.video import VideoActor

Result = Comment | LivehubError  # one draft's outcome: stored, or the error its post gets


class CommentStore(Protocol):
    """A video's stream in the database (``livehub.db.store.PgCommentStore``).

    Every method raises ``StoreUnavailable`` when the database cannot answer.
    """

    async def insert_many(
        self, batches: Sequence[tuple[str, Sequence[Draft]]]
    ) -> dict[str, list[Comment]]:
        """Store several videos' drafts in one transaction; each video's comments get
        its next seqs in order. Raises ``Unstorable`` when the data is refused."""
        ...

    async def read_stream(
        self, video_id: str, after: int, until: int | None = None, limit: int = ...
    ) -> list[Entry]:
        """Entries with ``after < seq <= until`` (until None: to the head), in order,
        at most ``limit``; deleted comments as tombstones."""
        ...

    async def stream_tail(self, video_id: str, limit: int) -> list[Entry]: ...

    async def pinned(self, video_id: str) -> tuple[int, str] | None: ...

    async def head(self, video_id: str) -> int: ...

    async def heads(self, video_ids: Sequence[str]) -> dict[str, int]: ...


class Inserter(Protocol):
    """Takes one video's batch and answers it later (``actors.merger.InsertMerger``)."""

    def submit(self, video_id: str, drafts: Sequence[Draft]) -> Reply[list[Result]]: ...


class Bus(Protocol):
    """Wake-ups between nodes (``livehub.db.bus.PgBus``)."""

    async def listen(self, video_id: str) -> None: ...

    def unlisten(self, video_id: str) -> None: ...

    def committed(self, video_id: str, comments: list[Entry]) -> None: ...


class NodeHooks(Protocol):
    """What an actor needs from its node (``actors.registry.Registry``)."""

    def coalesce_interval(self) -> float: ...

    def committed(self, video_id: str, comments: list[Entry]) -> None: ...

    def delivered(self, video_id: str, comments: list[Entry], viewers: int) -> None: ...

    def may_retire(self, video_id: str, actor: VideoActor) -> bool: ...

    def viewer_total(self, video_id: str) -> int | None: ...


class DirectSink(Protocol):
    """A transport the actor may write a frame to without waiting
    (``livehub/http/transport.py``). It frames the bytes for its connection itself."""

    @property
    def has_pending(self) -> bool: ...

    @property
    def can_wait_idle(self) -> bool: ...

    def try_write_frame(self, frame: Frame) -> bool: ...

    def try_write_control(self, data: bytes) -> bool: ...

    async def wait_idle(self) -> None: ...
