"""Fixtures: one throwaway Postgres cluster per session, a fresh database per test,
and the real server (in-process on a free port, or as a process)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import httpx
import hypercorn.config
import hypercorn.trio
import pytest
import trio

from livehub.config import Settings
from livehub.http import create_app
from livehub.http.lean import serve_lean

from .support import SECRET, create_database, new_cluster, remove_cluster


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = new_cluster()
    yield cluster
    remove_cluster(cluster)


@pytest.fixture
def dsn(pg_cluster) -> str:
    return create_database(pg_cluster)


@pytest.fixture(scope="session")
def pg_cluster2():
    """A second cluster, for a second shard (``LIVEHUB_DATABASE_URLS``)."""
    cluster = new_cluster()
    yield cluster
    remove_cluster(cluster)


@pytest.fixture
def dsn2(pg_cluster2) -> str:
    return create_database(pg_cluster2)


@pytest.fixture
def own_cluster():
    """A cluster of this test's own, which it may stop and start (a shard going down)."""
    cluster = new_cluster()
    yield cluster
    remove_cluster(cluster)


@pytest.fixture
def settings(dsn, tmp_path) -> Settings:
    return Settings(
        database_url=dsn,
        jwt_secret=SECRET,
        data_dir=str(tmp_path),
        heartbeat_seconds=15.0,
        db_command_timeout_seconds=3.0,
        # Tests post hundreds of comments as one user; the rate limit has its own tests.
        post_rate_per_second=1e6,
        post_burst=1_000_000,
    )


@dataclass
class LiveServer:
    url: str
    app: object

    @property
    def service(self):
        return self.app.service

    def client(self, **kw) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kw)


# Which server the in-process fixture runs the app on: "lean" (what `livehub serve`
# runs) or "hypercorn" (Hypercorn's trio worker: what `hypercorn livehub.asgi:app`
# runs). scripts/test runs the HTTP and live suites under both.
SERVER = os.environ.get("LIVEHUB_TEST_SERVER", "lean")


@contextlib.asynccontextmanager
async def run_server(settings: Settings, server: str | None = None):
    """The real app, in this process, on a free port, under ``server`` (default
    ``SERVER``)."""
    app = create_app(settings)
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 1
    config.loglevel = "WARNING"
    shutdown = trio.Event()

    def serve(task_status):
        if (server or SERVER) == "hypercorn":
            return hypercorn.trio.serve(
                app, config, shutdown_trigger=shutdown.wait, task_status=task_status
            )
        return serve_lean(
            app.front,
            config,
            body_timeout=settings.body_timeout_seconds,
            shutdown_trigger=shutdown.wait,
            task_status=task_status,
        )

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve)
        try:
            yield LiveServer(binds[0], app)
        finally:
            shutdown.set()
            nursery.cancel_scope.deadline = trio.current_time() + 10


@pytest.fixture
async def server(settings):
    async with run_server(settings) as live:
        yield live


@pytest.fixture
async def client(server):
    async with server.client() as c:
        yield c
