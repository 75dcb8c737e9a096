"""`livehub serve --workers 2` keeps serving when a worker dies (issue 12): the
parent restarts it with backoff, counts it in /metrics, and one scrape of the port
reports the node's totals whichever worker answers."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import httpx
import pytest
import trio

from ..support import ServerProcess, auth, start_livehub
from .test_metrics import scrape
from .test_workers import viewers_on_both

pytestmark = pytest.mark.slow


@pytest.fixture
def two_workers(dsn):
    server = start_livehub(dsn, workers=2)
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()


def log_records(server: ServerProcess) -> list[dict]:
    out = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def worker_pids(server: ServerProcess) -> list[int]:
    """Every worker the parent started, in order (its "worker started" log lines)."""
    return [r["worker_pid"] for r in log_records(server) if r.get("msg") == "worker started"]


def restart_delays(server: ServerProcess) -> list[float]:
    pattern = re.compile(r"worker \d+ exited \(code -9\); restarting it in ([0-9.]+)s")
    return [float(m.group(1)) for r in log_records(server) if (m := pattern.search(r["msg"]))]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


async def wait_for_workers(server: ServerProcess, n: int, within: float = 30) -> list[int]:
    """The pids once ``n`` workers were started and the newest answers requests."""
    with trio.fail_after(within):
        while len(pids := worker_pids(server)) < n:  # noqa: ASYNC110 - another process's log
            await trio.sleep(0.05)
        await served_by(server, n_nodes=2)
    return pids


async def served_by(server: ServerProcess, n_nodes: int) -> set[str]:
    """Open connections until ``n_nodes`` different workers have answered."""
    nodes: set[str] = set()
    while len(nodes) < n_nodes:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as c:
            nodes.add((await c.get("/healthz")).headers.get("X-Livehub-Node", "?"))
    return nodes


async def metrics_of(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=5) as c:  # a new connection each
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert "_created" not in r.text
    return scrape(r.text)


async def test_a_killed_worker_is_restarted_while_the_other_keeps_serving(two_workers):
    server = two_workers
    first, second = await wait_for_workers(server, 2)
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as c:
            for i in range(20):  # posts spread over both workers: counted node-wide
                async with httpx.AsyncClient(base_url=server.url, timeout=5) as one:
                    r = await one.post("/comments/k", json={"message": f"m{i}"}, headers=auth())
                    assert r.status_code == 201, r.text
            assert (await metrics_of(server.url))["livehub_posts_total"] == 20
            os.kill(first, signal.SIGKILL)
            answered = 0
            # Every request from the kill on is answered (by the survivor meanwhile),
            # until the replacement worker is up and answering too.
            while len(worker_pids(server)) < 3 or answered < 20:
                async with httpx.AsyncClient(base_url=server.url, timeout=5) as one:
                    r = await one.get("/comments/k?since=0")
                assert r.status_code == 200, r.text
                assert len(r.json()["comments"]) == 20
                answered += 1
                await trio.sleep(0.02)
            third = worker_pids(server)[2]
            assert alive(third) and alive(second) and not alive(first)
            await served_by(server, 2)  # the new worker takes connections too
            for _ in range(6):  # counters survive the dead worker, on every scrape
                m = await metrics_of(server.url)
                assert m["livehub_posts_total"] == 20
                assert m["livehub_worker_restarts_total"] == 1
            r = await c.post("/comments/k", json={"message": "after"}, headers=auth())
            assert r.status_code == 201
            assert r.json()["seq"] == 21
    assert "exited (code -9); restarting it in 0.5s" in server.log()


async def test_a_crash_loop_backs_off(two_workers):
    server = two_workers
    pids = await wait_for_workers(server, 2)
    survivor = pids[1]
    with trio.fail_after(60):
        victim = pids[0]
        for n in range(3):
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            while len(worker_pids(server)) < 3 + n:  # noqa: ASYNC110 - another process's log
                await trio.sleep(0.02)
            gap = time.monotonic() - killed_at
            assert gap >= [0.5, 1.0, 2.0][n] - 0.05, gap
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as c:
                assert (await c.get("/healthz")).status_code == 200  # the survivor serves
            victim = worker_pids(server)[-1]
        assert restart_delays(server) == [0.5, 1.0, 2.0]
        assert alive(survivor)
        await served_by(server, 2)
        assert (await metrics_of(server.url))["livehub_worker_restarts_total"] == 3


async def test_one_scrape_reports_the_node_totals_across_workers(two_workers):
    server = two_workers
    await wait_for_workers(server, 2)
    n = 40
    nodes = set()
    with trio.fail_after(60):
        for i in range(n):
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as c:
                r = await c.post(f"/comments/t{i % 3}", json={"message": f"m{i}"}, headers=auth())
            assert r.status_code == 201, r.text
            nodes.add(r.headers["X-Livehub-Node"])
        assert len(nodes) == 2, "every post went to one worker; retry the test"
        answered_by = set()
        for _ in range(10):
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as c:
                r = await c.get("/metrics")
            answered_by.add(r.headers["X-Livehub-Node"])
            m = scrape(r.text)
            assert m["livehub_posts_total"] == n
            assert m["livehub_post_seconds_count"] == n
            assert m["livehub_batch_size_sum"] == n
        assert len(answered_by) == 2
        # Snapshot gauges: streams held on both workers, summed in every scrape.
        async with viewers_on_both(server.url, "g", per_node=1) as by_node:
            total = sum(len(readers) for readers in by_node.values())
            # polling other processes: no event to wait on
            while (await metrics_of(server.url))["livehub_streams_open"] != total:  # noqa: ASYNC110
                await trio.sleep(0.1)
            for _ in range(4):
                m = await metrics_of(server.url)
                assert m["livehub_streams_open"] == total
                assert m["livehub_viewers"] == total
                assert m["livehub_stream_slots"] == 2 * 10000  # each worker's cap
                assert m["livehub_bus_connected"] == 1
