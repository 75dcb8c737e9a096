"""The actors' own logic, on fakes of the store and the bus, under the autojump clock:
ordering, gap reads, missed wake-ups, lag, resume, retirement, merging, outages.

Every test here runs in virtual time (seconds of it cost nothing) and reaches the
actors only through the registry's and the feed's public API, as the HTTP layer does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from livehub.actors.feed import Feed
from livehub.actors.registry import Registry
from livehub.actors.subscriber import Lagged, Subscription
from livehub.config import Settings
from livehub.core.errors import StoreUnavailable
from livehub.core.model import Comment, Draft, Event

from .fakes import FakeBus, FakeStore, wake


@dataclass
class Node:
    registry: Registry
    store: FakeStore
    bus: FakeBus


@contextlib.asynccontextmanager
async def node(**changes) -> AsyncIterator[Node]:
    """A node's registry on a fake store and bus (``changes``: settings)."""
    store, bus = FakeStore(), FakeBus()
    registry = Registry(store, Settings().replace(**changes), bus)
    async with trio.open_nursery() as nursery:
        await nursery.start(registry.run)
        yield Node(registry, store, bus)
        nursery.cancel_scope.cancel()


async def post(registry: Registry, video: str, message: str) -> Comment:
    return await registry.post(video, Draft("alice", message))


async def take(sub: Subscription, n: int, within: float = 30) -> list[int]:
    """The seqs of the next ``n`` entries the subscription hands its viewer."""
    seqs: list[int] = []
    with trio.fail_after(within):
        while len(seqs) < n:
            for frame in await sub.receive_batch():
                seqs.extend(e.seq for e in frame.comments)
    return seqs


async def nothing_more(sub: Subscription) -> bool:
    await trio.testing.wait_all_tasks_blocked()
    with trio.move_on_after(5):
        await sub.receive_batch()
        return False
    return True


async def read_feed(feed: Feed, until: int) -> list[int]:
    seqs: list[int] = []
    with trio.fail_after(30):
        while feed.position < until:
            for frame in await feed.next_batch():
                seqs.extend(e.seq for e in frame.comments)
    return seqs


async def test_posts_get_consecutive_seqs_and_reach_a_viewer_once_in_order(autojump_clock):
    async with node() as n:
        s = await n.registry.subscribe("v", None, 0)
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(post, n.registry, "v", f"m{i}")
        assert await take(s.sub, 20) == list(range(1, 21))
        assert await nothing_more(s.sub)
        # the other nodes were told of every seq, in contiguous ranges
        told = [seq for _, first, last in n.bus.sent for seq in range(first, last + 1)]
        assert told == list(range(1, 21))


async def test_a_wake_up_past_a_gap_reads_the_missing_range_and_a_stale_one_is_dropped(
    autojump_clock,
):
    async with node(resync_interval_seconds=3600) as n:  # no periodic check to help
        s = await n.registry.subscribe("v", None, 0)
        rows = n.store.append_elsewhere("v", ["a", "b", "c"])
        n.registry.notify_nowait(wake(rows[2:]))  # the wake-ups of 1 and 2 were lost
        assert await take(s.sub, 3) == [1, 2, 3]
        assert n.store.reads, "the gap must have been read from the n.store"
        n.registry.notify_nowait(wake(rows[1:]))  # late and already delivered
        assert await nothing_more(s.sub)


async def test_a_wake_up_without_comments_inline_is_read_from_the_store(autojump_clock):
    async with node(resync_interval_seconds=3600) as n:
        s = await n.registry.subscribe("v", None, 0)
        rows = n.store.append_elsewhere("v", ["a", "b"])
        n.registry.notify_nowait(wake(rows, inline=False))
        assert await take(s.sub, 2) == [1, 2]


async def test_a_wake_up_that_never_comes_is_caught_by_the_counter_check(autojump_clock):
    async with node(resync_interval_seconds=2.0) as n:
        s = await n.registry.subscribe("v", None, 0)
        n.store.append_elsewhere("v", ["a", "b"])  # no wake-up at all
        start = trio.current_time()
        assert await take(s.sub, 2) == [1, 2]
        assert trio.current_time() - start <= 2.5


async def test_a_bus_reconnect_makes_every_actor_read_what_it_missed(autojump_clock):
    async with node(resync_interval_seconds=3600) as n:
        a = await n.registry.subscribe("a", None, 0)
        b = await n.registry.subscribe("b", None, 0)
        n.store.append_elsewhere("a", ["x"])
        n.store.append_elsewhere("b", ["y", "z"])
        n.registry.resync_all()
        assert await take(a.sub, 1) == [1]
        assert await take(b.sub, 2) == [1, 2]


async def test_a_viewer_that_falls_behind_is_told_lagged_and_others_are_not(autojump_clock):
    async with node(subscriber_queue_frames=2) as n:
        slow = await n.registry.subscribe("v", None, 0)
        fast = await n.registry.subscribe("v", None, 0)
        for i in range(6):
            await post(n.registry, "v", f"m{i}")
            assert await take(fast.sub, 1) == [i + 1]
        with pytest.raises(Lagged):
            await slow.sub.receive_batch()
        assert n.registry.statistics().lagged_drops >= 1


async def test_a_lagging_feed_catches_up_from_the_store_without_gaps_or_duplicates(
    autojump_clock,
):
    async with node(subscriber_queue_frames=2) as n:
        feed = Feed(n.registry, n.store, "v")
        await feed.start(None, 0)
        for i in range(50):
            await post(n.registry, "v", f"m{i}")  # the feed reads nothing meanwhile
        assert await read_feed(feed, 50) == list(range(1, 51))
        await post(n.registry, "v", "live again")
        assert await read_feed(feed, 51) == [51]
        feed.close()


@pytest.mark.parametrize(
    ("after", "reads_store"),
    [(1, True), (4, False)],
    ids=["older-than-the-ring", "within-the-ring"],
)
async def test_a_resume_continues_exactly_after_its_seq(autojump_clock, after, reads_store):
    async with node(ring_size=3) as n:
        for i in range(6):
            await post(n.registry, "v", f"m{i}")
        n.store.reads.clear()
        feed = Feed(n.registry, n.store, "v")
        await feed.start(after, 0)
        assert await read_feed(feed, 6) == list(range(after + 1, 7))
        assert bool(n.store.reads) is reads_store
        feed.close()


async def test_a_deleted_comment_replays_as_a_tombstone_to_later_viewers(autojump_clock):
    async with node() as n:
        for m in ("one", "two", "three"):
            await post(n.registry, "v", m)
        deletion = n.store.delete_elsewhere("v", 2)
        n.registry.notify_nowait(wake([deletion]))
        await trio.testing.wait_all_tasks_blocked()
        s = await n.registry.subscribe("v", 0, 0)  # resumes from the start: the ring
        replay = {e.seq: e for e in s.replay}
        assert sorted(replay) == [1, 2, 3, 4]
        assert isinstance(replay[2], Event) and replay[2].kind == "deleted"
        assert "two" not in replay[2].data
        assert replay[4].kind == "deleted" and replay[4].target == 2


async def test_an_idle_actor_without_viewers_retires_and_stops_listening(autojump_clock):
    async with node(actor_idle_seconds=5.0) as n:
        await post(n.registry, "v", "hello")
        assert n.registry.actor("v") is not None and n.bus.listening == {"v": 1}
        await trio.sleep(20)
        assert n.registry.actor("v") is None
        assert n.bus.listening == {}
        assert (await post(n.registry, "v", "again")).seq == 2  # a new actor takes over


async def test_an_actor_with_a_viewer_does_not_retire(autojump_clock):
    async with node(actor_idle_seconds=5.0) as n:
        s = await n.registry.subscribe("v", None, 0)
        await trio.sleep(60)
        assert n.registry.actor("v") is not None
        n.registry.unsubscribe_nowait("v", s.sub)
        await trio.sleep(60)
        assert n.registry.actor("v") is None


@pytest.mark.parametrize(("max_batch", "transactions"), [(500, 2), (1, 4)])
async def test_batches_queued_behind_a_transaction_share_the_next_one(
    autojump_clock, max_batch, transactions
):
    """Merged: what queues while a transaction is in flight goes into one more
    transaction, whatever the video. Unmerged (max_batch 1, the baseline): one each."""
    async with node(max_batch=max_batch) as n:
        for v in ("a", "b", "c", "d"):  # actors up, so only the posts are timed
            await n.registry.subscribe(v, None, 0)
        n.store.inserts = 0
        n.store.hold = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post, n.registry, "a", "first")
            await trio.testing.wait_all_tasks_blocked()
            for v in ("b", "c", "d"):
                nursery.start_soon(post, n.registry, v, "queued")
            await trio.testing.wait_all_tasks_blocked()
            n.store.hold.set()
        assert n.store.inserts == transactions
        assert {v: len(n.store.streams[v]) for v in "abcd"} == {v: 1 for v in "abcd"}


async def test_a_store_outage_fails_posts_fast_and_the_video_recovers(autojump_clock):
    async with node() as n:
        await post(n.registry, "v", "before")
        n.store.down = True
        with trio.fail_after(10), pytest.raises(StoreUnavailable):
            await post(n.registry, "v", "during")
        n.store.down = False
        assert (await post(n.registry, "v", "after")).seq == 2
        assert [c.message for c in n.store.streams["v"]] == ["before", "after"]


async def test_registry_viewers_are_its_actors_subscriptions(autojump_clock):
    async with node() as n:
        subs = [await n.registry.subscribe(v, None, 0) for v in ("a", "a", "b")]
        assert n.registry.statistics().viewers == 3
        n.registry.unsubscribe_nowait("a", subs[0].sub)
        await trio.testing.wait_all_tasks_blocked()
        assert n.registry.statistics().viewers == 2


async def test_a_subscribe_given_up_while_the_actor_is_busy_subscribes_nobody(autojump_clock):
    async with node(resync_interval_seconds=3600) as n:
        await n.registry.subscribe("v", None, 0)  # one real viewer
        n.store.read_hold = trio.Event()
        rows = n.store.append_elsewhere("v", ["a", "b"])
        n.registry.notify_nowait(wake(rows[1:]))  # a gap: the actor waits in a read
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(n.registry.subscribe, "v", None, 0)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()  # every one of them gives up while waiting
        n.store.read_hold.set()
        await trio.testing.wait_all_tasks_blocked()
        assert n.registry.actor("v").statistics().subscribers == 1
        assert n.registry.statistics().viewers == 1


async def test_a_post_whose_actor_crashes_mid_write_still_gets_its_comment(autojump_clock):
    """The write outlives the actor: a comment it stores is acknowledged, not failed
    (a client retrying a 503 would store it twice)."""
    async with node(resync_interval_seconds=3600) as n:
        await post(n.registry, "v", "warm-up")
        n.store.hold = trio.Event()
        result = {}

        async def mid_crash() -> None:
            result["comment"] = await post(n.registry, "v", "mid-crash")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(mid_crash)
            await trio.testing.wait_all_tasks_blocked()  # the insert is in flight
            n.store.read_error = RuntimeError("injected actor crash")
            n.registry.resync_all()  # the actor reads the store, and crashes
            await trio.testing.wait_all_tasks_blocked()
            assert n.registry.statistics().restarts == 1
            n.store.hold.set()
        assert result["comment"].seq == 2
        assert [c.message for c in n.store.streams["v"]] == ["warm-up", "mid-crash"]
