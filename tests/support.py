"""Test helpers: Postgres clusters, server processes, an SSE reader. No mocks here."""

from __future__ import annotations

import atexit
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio
from livehub_loadtest.sse import SseParser

from livehub.db.cluster import Cluster, free_port
from livehub.identity.auth import mint

ROOT = Path(__file__).resolve().parent.parent
# Server logs of this test run; removed when the run ends (read them during a test).
LOG_DIR = tempfile.mkdtemp(prefix="livehub-test-logs-")
atexit.register(shutil.rmtree, LOG_DIR, True)
SECRET = "test-secret-not-for-production-0123456789"


def new_cluster(durable: bool = False, options: tuple[str, ...] = ()) -> Cluster:
    """A throwaway cluster in a world-traversable temp dir (postgres runs it as root).

    Resource handling: ``remove_cluster`` stops it and deletes its directory. If this
    process dies first (killed, or pytest-timeout's hard exit), a small watchdog stops
    the postmaster by its data dir and deletes the directory, so no test run leaves
    a Postgres behind.
    """
    base = Path(tempfile.mkdtemp(prefix="livehub-pg-"))
    os.chmod(base, 0o755)
    cluster = Cluster(base / "pgdata", durable=durable, options=options)
    cluster.start()
    _reap_when_gone(os.getpid(), cluster)
    return cluster


def remove_cluster(cluster: Cluster) -> None:
    cluster.remove()
    shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


def _reap_when_gone(owner: int, cluster: Cluster) -> None:
    stop = shlex.join(
        cluster._cmd(
            str(cluster.bindir / "pg_ctl"), "-D", str(cluster.datadir), "-m", "immediate", "stop"
        )
    )
    script = (
        f"while kill -0 {owner} 2>/dev/null; do sleep 1; done; "
        f"[ -f {shlex.quote(str(cluster.datadir / 'postmaster.pid'))} ] && {stop}; "
        f"rm -rf {shlex.quote(str(cluster.datadir.parent))}"
    )
    subprocess.Popen(
        ["sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def create_database(cluster: Cluster) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    subprocess.run(
        [
            str(cluster.bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            name,
        ],
        check=True,
        capture_output=True,
    )
    return cluster.dsn(name)


def token(user: str, secret: str = SECRET, ttl: int = 3600, roles: list | None = None) -> str:
    return mint(user, secret, ttl, extra=None if roles is None else {"roles": roles})


def auth(user: str = "alice", roles: list | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, roles=roles)}"}


def moderator(video: str | None = None, user: str = "mod") -> dict[str, str]:
    """Headers of a moderator of every video (or only of ``video``)."""
    return auth(user, ["moderator" if video is None else f"moderator:{video}"])


@dataclass
class ServerProcess:
    """``python -m livehub serve`` (or any command) started by PID, stopped by PID."""

    url: str
    proc: subprocess.Popen
    log_path: Path
    env: dict = field(default_factory=dict)

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_env(dsn: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LIVEHUB_DATABASE_URL=dsn,
        LIVEHUB_JWT_SECRET=SECRET,
        PYTHONUNBUFFERED="1",
        # Tests post many comments as one user; the rate limit has its own tests.
        LIVEHUB_POST_RATE_PER_SECOND="1000000",
        LIVEHUB_POST_BURST="1000000",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_process(
    args: list[str], env: dict[str, str], port: int, ready_timeout: float = 30
) -> ServerProcess:
    """Start a server command and wait until ``/healthz`` answers on ``port``."""
    log_path = Path(tempfile.mkstemp(prefix="server-", suffix=".log", dir=LOG_DIR)[1])
    log = open(log_path, "wb")  # the child process writes it
    proc = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = ServerProcess(f"http://127.0.0.1:{port}", proc, log_path, env)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=0.5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not become ready:\n{server.log()}")


def start_livehub(dsn: str, port: int | None = None, workers: int = 1, **env: str) -> ServerProcess:
    port = port or free_port()
    args = [
        sys.executable,
        "-m",
        "livehub",
        "serve",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    return start_process(args, server_env(dsn, **env), port)


@dataclass
class Event:
    id: int | None
    event: str
    data: str

    def json(self):
        return json.loads(self.data)


class SSEReader:
    """Reads SSE events from an httpx streaming response, one event at a time, with
    the load tester's parser (the suite's one SSE parser)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_raw()
        self._parser = SseParser()
        self._ready: list[Event] = []
        self.retry: int | None = None
        self.comments_seen = 0

    async def next_event(self) -> Event:
        while not self._ready:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                raise EOFError("stream ended") from None
            for ev in self._parser.feed(chunk):
                self._ready.append(
                    Event(
                        int(ev.id) if ev.id is not None else None,
                        ev.event.decode(),
                        ev.data.decode(),
                    )
                )
            if self._parser.retry is not None:
                self.retry, self._parser.retry = self._parser.retry, None
        return self._ready.pop(0)

    async def comments(self, n: int, within: float = 10) -> list[dict]:
        """The next ``n`` comment events (other event types skipped)."""
        out = []
        with trio.fail_after(within):
            while len(out) < n:
                ev = await self.next_event()
                if ev.event == "comment":
                    c = ev.json()
                    assert ev.id == c["seq"], (ev.id, c)
                    out.append(c)
        return out


def psql(cluster: Cluster, dsn: str, sql: str) -> str:
    """Run SQL with the cluster's own psql (tests only); returns unaligned output."""
    out = subprocess.run(
        [str(cluster.bindir / "psql"), dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
