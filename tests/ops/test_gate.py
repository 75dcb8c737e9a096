"""livehub.node.gate: stream slots, posts in flight and the drain, on Trio's fake clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from livehub.core.errors import Overloaded, ShuttingDown
from livehub.node.gate import Draining, Gate


def test_slots_are_capped_counted_per_video_and_released_once():
    gate = Gate(max_streams=2, retry_after_seconds=3)
    a = gate.open_stream("v")
    b = gate.open_stream("v")
    with pytest.raises(Overloaded) as full:
        gate.open_stream("w")
    assert full.value.retry_after_seconds == 3
    assert gate.viewers() == {"v": 2}
    a.close()
    a.close()  # idempotent: a second close frees nothing more
    assert gate.viewers() == {"v": 1}
    w = gate.open_stream("w")
    assert gate.viewers() == {"v": 1, "w": 1}
    assert gate.streams_open() == gate.statistics().streams == 2
    w.close()
    b.close()
    assert gate.viewers() == {}
    assert gate.statistics().refused_full == 1


async def test_drain_wakes_waiting_streams_and_refuses_newcomers(autojump_clock):
    gate = Gate(max_streams=10, retry_after_seconds=1)
    ended = []

    async def stream(name: str) -> None:
        slot = gate.open_stream(name)
        never = trio.Event()
        try:
            while True:
                got = await gate.wait(never.wait, trio.current_time() + 15)
                assert got is None  # a heartbeat timeout, not a comment
        except Draining:
            ended.append(name)
        finally:
            slot.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream, "a")
        nursery.start_soon(stream, "b")
        await trio.testing.wait_all_tasks_blocked()
        assert await gate.drain(5) is True
    assert sorted(ended) == ["a", "b"]
    assert gate.statistics().streams == 0
    with pytest.raises(ShuttingDown):
        gate.open_stream("c")
    with pytest.raises(ShuttingDown), gate.post():
        pass
    with pytest.raises(Draining):
        await gate.wait(trio.sleep_forever, trio.current_time() + 1)


async def test_drain_waits_for_posts_in_flight(autojump_clock):
    gate = Gate(max_streams=10, retry_after_seconds=1)
    answered = []

    async def post(seconds: float) -> None:
        with gate.post():
            await trio.sleep(seconds)
            answered.append(seconds)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(post, 2)
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        assert await gate.drain(5) is True
        assert answered == [2]
        assert trio.current_time() - started == pytest.approx(2)


async def test_drain_gives_up_at_its_bound(autojump_clock):
    gate = Gate(max_streams=10, retry_after_seconds=1)
    async with trio.open_nursery() as nursery:

        async def stuck_post() -> None:
            with gate.post():
                await trio.sleep(100)

        nursery.start_soon(stuck_post)
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        assert await gate.drain(5) is False
        assert trio.current_time() - started == pytest.approx(5)
        nursery.cancel_scope.cancel()
