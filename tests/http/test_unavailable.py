"""Postgres goes away under a running server: 503s with Retry-After, fast, never a
hang or a 500; liveness stays up; service comes back by itself when Postgres does."""

from __future__ import annotations

import time

import pytest
import trio

from livehub.config import Settings

from ..conftest import run_server
from ..support import SECRET, auth, create_database, new_cluster, remove_cluster


@pytest.fixture
def own_cluster():
    cluster = new_cluster()  # not the session one: this test stops it
    try:
        yield cluster
    finally:
        remove_cluster(cluster)


def assert_503(r, started: float, within: float, retry_after: bool = True) -> None:
    elapsed = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] and error["message"]
    if retry_after:
        assert int(r.headers["retry-after"]) >= 1
    assert elapsed < within, f"503 took {elapsed:.1f}s"


async def test_503_while_postgres_is_down_then_recovery_without_restart(own_cluster, tmp_path):
    settings = Settings(
        database_url=create_database(own_cluster),
        jwt_secret=SECRET,
        data_dir=str(tmp_path),
        db_command_timeout_seconds=3.0,
    )
    async with run_server(settings) as live, live.client() as client:
        with trio.fail_after(10):
            assert (await client.get("/readyz")).status_code == 200
            r = await client.post("/comments/live", json={"message": "one"}, headers=auth())
            assert r.status_code == 201 and r.json()["seq"] == 1

        await trio.to_thread.run_sync(own_cluster.stop)

        with trio.fail_after(30):  # a hang fails here, not in the CI's global timeout
            started = time.monotonic()
            r = await client.get("/readyz")
            assert_503(r, started, within=3.5, retry_after=False)  # for balancers: no hint
            assert r.json()["error"]["code"] == "store_unavailable"

            # posts to a live video and to a new one, several at once: all 503 promptly
            results = []

            async def post(video: str, i: int) -> None:
                t0 = time.monotonic()
                resp = await client.post(
                    f"/comments/{video}", json={"message": f"m{i}"}, headers=auth()
                )
                results.append((resp, t0))

            async with trio.open_nursery() as nursery:
                for i in range(6):
                    nursery.start_soon(post, "live" if i % 2 else "brand-new", i)
            assert len(results) == 6
            for resp, t0 in results:
                assert_503(resp, t0, within=8)

            for path in ("/comments/live", "/comments/live?since=0", "/comments/new?cursor=5"):
                started = time.monotonic()
                assert_503(await client.get(path), started, within=8)

            assert (await client.get("/healthz")).status_code == 200  # the process is fine

        await trio.to_thread.run_sync(lambda: own_cluster.start(port=own_cluster.port))

        with trio.fail_after(20):
            while (await client.get("/readyz")).status_code != 200:  # noqa: ASYNC110 - polling HTTP
                await trio.sleep(0.1)
            r = await client.post("/comments/live", json={"message": "two"}, headers=auth())
            assert r.status_code == 201, r.text
            assert r.json()["seq"] == 2  # the refused posts allocated nothing: no hole
            page = (await client.get("/comments/live")).json()
            assert [c["message"] for c in page["comments"]] == ["two", "one"]
            r = await client.post("/comments/brand-new", json={"message": "x"}, headers=auth())
            assert r.status_code == 201 and r.json()["seq"] == 1
