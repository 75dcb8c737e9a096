"""How the coordinator and the viewer groups talk: plain picklable tuples over a channel.

In one process the channel is a pair of bounded trio memory channels; with ``--procs N``
it is a multiprocessing Pipe read from a worker thread. Messages, in order:

  group -> coordinator  ("connected", connected, total)
  coordinator -> group  ("post_start", drop_at_monotonic | None)
  coordinator -> group  ("drain", {video: [(send_ns, key, seq), ...]}, drain_until_monotonic,
                         {video: [key of a post cut in flight, ...]},
                         {video: {"done": [(key, seq, answered_ns)], "unknown": [(key, seq)]}})
  group -> coordinator  ("result", dict)
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import trio


class Channel(Protocol):
    async def send(self, msg: Any) -> None: ...

    async def recv(self) -> Any: ...


class MemoryChannel:
    def __init__(self, send: trio.MemorySendChannel, recv: trio.MemoryReceiveChannel) -> None:
        self._send = send
        self._recv = recv

    async def send(self, msg: Any) -> None:
        await self._send.send(msg)

    async def recv(self) -> Any:
        return await self._recv.receive()


def memory_channel_pair() -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected ends; each direction holds at most 4 messages (the protocol needs 2)."""
    a_send, b_recv = trio.open_memory_channel(4)
    b_send, a_recv = trio.open_memory_channel(4)
    return MemoryChannel(a_send, a_recv), MemoryChannel(b_send, b_recv)


class PipeChannel:
    """A multiprocessing Connection used from trio through worker threads."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def send(self, msg: Any) -> None:
        await trio.to_thread.run_sync(self._conn.send, msg)

    async def recv(self) -> Any:
        return await trio.to_thread.run_sync(self._conn.recv, abandon_on_cancel=True)


def trio_deadline(monotonic_at: float) -> float:
    """Convert a ``time.monotonic()`` instant (shared by processes) to this trio run's clock."""
    return trio.current_time() + (monotonic_at - time.monotonic())
