"""livehub/pg.py, the trio-asyncio bridge to asyncpg: load, cancellation, timeouts,
and clients that disconnect mid-request. Real Postgres, real server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from pathlib import Path

import trio
import trio_asyncio

from livehub.core.errors import StoreUnavailable
from livehub.db.bridge import open_database
from livehub.db.cluster import free_port

from .support import auth, create_database, new_cluster, remove_cluster

SLEEPERS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND state = 'active' AND query LIKE '%pg_sleep(10)%'"
)


async def wait_until(predicate, within: float, every: float = 0.02) -> None:
    with trio.fail_after(within):
        while not await predicate():  # noqa: ASYNC110 - polling Postgres, no event to wait on
            await trio.sleep(every)


async def test_500_concurrent_queries_share_a_pool_of_10(dsn):
    results: dict[int, int] = {}
    peak_open = 0
    peak_backends = 0
    done = trio.Event()

    async with trio_asyncio.open_loop():
        async with open_database(dsn, max_size=10) as db, open_database(dsn, max_size=1) as probe:

            async def query(i: int) -> None:
                results[i] = await db.fetchval("SELECT $1::int * 2 FROM pg_sleep(0.005)", i)

            async def watch() -> None:
                nonlocal peak_open, peak_backends
                while not done.is_set():
                    peak_open = max(peak_open, db.statistics()[0])
                    backends = await probe.fetchval(
                        # client backends only: an autovacuum worker visiting this
                        # database is not the pool's (it made this flaky under load)
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND backend_type = 'client backend'"
                    )
                    peak_backends = max(peak_backends, backends)
                    await trio.sleep(0.005)

            with trio.fail_after(30):
                async with trio.open_nursery() as outer:
                    outer.start_soon(watch)
                    async with trio.open_nursery() as nursery:
                        for i in range(500):
                            nursery.start_soon(query, i)
                    done.set()
            assert results == {i: 2 * i for i in range(500)}  # all succeeded, none crossed
            assert peak_open == 10  # the pool grew to its cap under load...
            assert peak_backends <= 10  # ...and Postgres never saw more from it
            size, idle = db.statistics()
            assert size <= 10 and idle == size  # everything came back


async def test_cancelled_query_returns_its_connection_and_stops_on_the_server(dsn):
    async with trio_asyncio.open_loop():
        async with (
            open_database(dsn, max_size=2, timeout_seconds=30) as db,
            open_database(dsn, max_size=1) as probe,
        ):
            await db.fetchval("SELECT 1")
            with trio.fail_after(5):
                await _cancel_mid_sleep(db, probe)

            async def released() -> bool:
                size, idle = db.statistics()
                return idle == size

            await wait_until(released, within=3)
            await wait_until(lambda: _none_running(probe), within=3)
            # the pool still works, connection by connection
            with trio.fail_after(5):
                assert [await db.fetchval("SELECT $1::int", i) for i in range(5)] == list(range(5))


async def _cancel_mid_sleep(db, probe) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(db.fetchval, "SELECT pg_sleep(10)")
        await wait_until(lambda: _running(probe), within=5)
        assert db.statistics()[1] < db.statistics()[0]  # one connection is busy
        nursery.cancel_scope.cancel()  # the Trio task goes away mid-query


async def _running(probe) -> bool:
    return await probe.fetchval(SLEEPERS) == 1


async def _none_running(probe) -> bool:
    return await probe.fetchval(SLEEPERS) == 0


async def test_a_query_past_the_timeout_raises_store_unavailable(dsn):
    async with trio_asyncio.open_loop():
        async with (
            open_database(dsn, max_size=2, timeout_seconds=0.5) as db,
            open_database(dsn, max_size=1) as probe,
        ):
            started = trio.current_time()
            with trio.fail_after(5):
                try:
                    await db.fetchval("SELECT pg_sleep(10)")
                except StoreUnavailable as exc:
                    assert "in time" in exc.message
                else:
                    raise AssertionError("a 10 s query under a 0.5 s timeout returned")
            assert trio.current_time() - started < 2
            await wait_until(lambda: _none_running(probe), within=3)
            with trio.fail_after(5):
                assert await db.fetchval("SELECT 41 + 1") == 42  # and the pool recovers
                # a longer call: its own deadline, and its statement its own timeout
                assert await db.call(_sleep_one_second, db, timeout_seconds=5) == "SELECT 1"


async def _sleep_one_second(db) -> str:  # asyncio side
    return await db._pool.execute("SELECT pg_sleep(1)", timeout=5)


def _cluster_pids(cluster) -> list[int]:
    postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


async def test_a_hung_postgres_is_store_unavailable_within_a_bounded_time():
    # Frozen, not dead (a network partition, a stuck host): nothing answers and no
    # connection is refused. Calls must still end, and the pool must recover.
    cluster = new_cluster()
    try:
        dsn = create_database(cluster)
        async with open_database(dsn, max_size=2, timeout_seconds=1) as db:
            assert await db.fetchval("SELECT 1") == 1
            pids = _cluster_pids(cluster)
            # safety net: a hang in the code under test cannot leave Postgres frozen
            thaw = threading.Timer(15, _signal_all, (pids, signal.SIGCONT))
            thaw.start()
            _signal_all(pids, signal.SIGSTOP)
            try:
                for _ in range(2):
                    started = trio.current_time()
                    try:
                        await db.fetchval("SELECT 1")
                    except StoreUnavailable:
                        pass
                    else:
                        raise AssertionError("a frozen Postgres answered")
                    # the deadline, plus at most asyncpg's bounded cancel request
                    assert trio.current_time() - started < 3
            finally:
                _signal_all(pids, signal.SIGCONT)
                thaw.cancel()
            with trio.fail_after(5):
                assert await db.fetchval("SELECT 2") == 2
    finally:
        remove_cluster(cluster)


async def test_unreachable_postgres_is_store_unavailable_not_a_hang():
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nobody listens
    with trio.fail_after(10):
        async with open_database(dsn, max_size=2, timeout_seconds=2) as db:
            try:
                await db.fetchval("SELECT 1")
            except StoreUnavailable as exc:
                assert "unavailable" in exc.message
            else:
                raise AssertionError("a query to a closed port succeeded")


async def test_clients_that_disconnect_mid_post_leak_no_connection(server, settings):
    svc = server.service
    async with server.client() as client:
        r = await client.post("/comments/locked", json={"message": "before"}, headers=auth())
        assert r.status_code == 201
    async with trio_asyncio.open_loop() as loop:
        lock_held = asyncio.Event()  # asyncio side: the test's own connection holds the lock
        release = asyncio.Event()

        async def hold_lock(conn) -> None:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM videos WHERE video_id = 'locked' FOR UPDATE")
                lock_held.set()
                await release.wait()

        async def posts_wait_on_the_lock() -> bool:
            waiting = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return waiting >= 1

        async def post(i: int) -> None:
            async with server.client() as c:
                await c.post("/comments/locked", json={"message": f"m{i}"}, headers=auth())

        async with open_database(settings.database_url, max_size=2, timeout_seconds=30) as db:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(db.with_connection, hold_lock)
                with trio.fail_after(5):
                    await trio_asyncio.aio_as_trio(lock_held.wait, loop=loop)()
                    async with trio.open_nursery() as posters:
                        for i in range(5):
                            posters.start_soon(post, i)
                        await wait_until(posts_wait_on_the_lock, within=5)
                        assert svc.db.statistics()[1] < svc.db.statistics()[0]  # busy in the DB
                        posters.cancel_scope.cancel()  # every client hangs up mid-request
                release.set()

    async def pool_idle() -> bool:
        size, idle = svc.db.statistics()
        return idle == size

    await wait_until(pool_idle, within=5)
    async with server.client() as client:
        with trio.fail_after(10):
            r = await client.post("/comments/locked", json={"message": "after"}, headers=auth())
            assert r.status_code == 201, r.text
            page = (await client.get("/comments/locked?since=0")).json()["comments"]
            seqs = [c["seq"] for c in page]
            assert seqs == list(range(1, len(seqs) + 1))  # no hole from the hang-ups
            assert page[0]["message"] == "before" and page[-1]["message"] == "after"
            assert r.json()["seq"] == len(seqs)
            assert (await client.get("/readyz")).status_code == 200
    await wait_until(pool_idle, within=5)  # background work (resync, notifier) may hold one briefly


async def test_a_stray_asyncio_error_is_logged_and_the_pool_goes_on(dsn, caplog):
    # An error no asyncio code awaits (asyncpg's "unexpected connection_lost() call" on
    # a connection whose query a departing client cancelled) reaches the loop's
    # exception handler. trio-asyncio's default raised it into Trio and ended the
    # pool, the service and the worker; ours logs it.
    async with open_database(dsn, max_size=2) as db:

        def stray() -> None:
            raise ConnectionError("unexpected connection_lost() call")

        db.loop.call_soon(stray)
        with trio.fail_after(5):
            await trio.sleep(0.1)
            assert await db.fetchval("SELECT 41 + 1") == 42
    logged = [r for r in caplog.records if r.name == "livehub.db.bridge" and r.exc_info]
    assert any("unexpected connection_lost" in str(r.exc_info[1]) for r in logged)
