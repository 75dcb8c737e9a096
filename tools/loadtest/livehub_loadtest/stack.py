"""Servers for the benchmarks: a throwaway Postgres, livehub nodes, nginx + nchan.

Used by ``scripts/bench`` and the ``scripts/bench_*.py`` scenario scripts. Everything
started here listens on 127.0.0.1 only and is stopped by its own PID:

- ``ThrowawayPostgres``: a fresh cluster (``livehub.db.cluster.Cluster``) in a temp dir,
  durable (fsync on) by default because that is what users run; removed on stop.
  ``pids()`` gives the postmaster, whose children are every backend, so measuring its
  tree includes all of Postgres's CPU (exited backends land in its ``cutime``).
- ``LivehubNode``: ``python -m livehub serve`` pointed at that cluster with a generated
  JWT secret, ready when ``/readyz`` says 200 (Postgres reachable, migrations done).
- ``Nchan``: ``scripts/nchan/run start|stop``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from livehub.db.cluster import Cluster, free_port
from livehub_loadtest.procstat import descendants, raise_nofile_limit

ROOT = Path(__file__).resolve().parents[3]
STOP_TIMEOUT_S = 15


class StackError(RuntimeError):
    """A server did not start."""


def _stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> None:
    """Signal one process we started; SIGKILL it (and what is left of its tree) later."""
    tree = descendants(pid)
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}") or _is_zombie(pid):
            break
        time.sleep(0.05)
    for p in [pid, *tree]:
        with contextlib.suppress(ProcessLookupError):
            if os.path.exists(f"/proc/{p}") and not _is_zombie(p):
                os.kill(p, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return raw[raw.rfind(b")") + 2 :].startswith(b"Z")
    except OSError:
        return True


@dataclass
class ThrowawayPostgres:
    """A fresh cluster on a free port; ``stop()`` stops it and deletes its files."""

    durable: bool = True
    cluster: Cluster | None = None
    base: Path | None = None

    def start(self) -> ThrowawayPostgres:
        # As root the cluster runs as the postgres user: every parent of the data dir
        # must be traversable by it (mkdtemp makes 0700 dirs; open this one up).
        self.base = Path(tempfile.mkdtemp(prefix="livehub-bench-pg-"))
        os.chmod(self.base, 0o755)
        self.cluster = Cluster(self.base / "pgdata", durable=self.durable)
        self.cluster.start()
        return self

    def dsn(self, dbname: str = "postgres") -> str:
        assert self.cluster is not None
        return self.cluster.dsn(dbname)

    @property
    def bindir(self) -> Path:
        assert self.cluster is not None and self.cluster.bindir is not None
        return self.cluster.bindir

    def postmaster_pid(self) -> int:
        assert self.cluster is not None
        return int((self.cluster.datadir / "postmaster.pid").read_text().split()[0])

    def pids(self) -> list[int]:
        """The postmaster: measure its tree (backends, walwriter, checkpointer...)."""
        return [self.postmaster_pid()]

    def fsync(self) -> str:
        return self.psql("SHOW fsync")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run(
            [str(self.bindir / "psql"), self.dsn(dbname), "-XAtq", "-v", "ON_ERROR_STOP=1"],
            input=sql,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def stop(self) -> None:
        if self.cluster is None:
            return
        try:
            self.cluster.stop()  # pg_ctl stop -m fast: by the postmaster.pid file
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
            self.cluster = None


@dataclass
class LivehubNode:
    """One ``livehub serve`` process (``workers`` Hypercorn workers) on a free port."""

    dsn: str
    jwt_secret: str
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_timeout_s: float = 60) -> LivehubNode:
        raise_nofile_limit()  # inherited: 10,000 viewers need more than 1,024 fds
        self.port = self.port or free_port()
        env = dict(os.environ)
        env.update(
            LIVEHUB_DATABASE_URL=self.dsn,
            LIVEHUB_JWT_SECRET=self.jwt_secret,
            PYTHONUNBUFFERED="1",
            # Every load-test viewer comes from 127.0.0.1: one client, thousands of streams.
            LIVEHUB_MAX_STREAMS_PER_CLIENT="0",
        )
        env.update(self.env)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="livehub-bench-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "livehub",
                    "serve",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                ],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C is not its SIGINT
            )
        self._wait_ready(ready_timeout_s)
        return self

    def _wait_ready(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(f"livehub exited {self.proc.returncode}:\n{self.log_tail()}")
            if http_status(self.url + "/readyz") == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise StackError(f"livehub not ready within {within_s:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def metric(self, name: str) -> float | None:
        """One unlabelled sample from /metrics (this worker's, when there are several)."""
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
                text = resp.read().decode()
        except (OSError, urllib.error.URLError):
            return None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "_total "):
                return float(line.split()[-1])
        return None

    def stop(self) -> None:
        if self.proc is None:
            return
        _stop_pid(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


@dataclass
class Nchan:
    """nginx + nchan through ``scripts/nchan/run`` (one worker, the master's PID)."""

    pid: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nchan:
        raise_nofile_limit()
        out = subprocess.run(
            [str(ROOT / "scripts/nchan/run"), "start"],
            check=True,
            capture_output=True,
            text=True,
        )
        pid, port, _prefix = out.stdout.split()
        self.pid, self.port = int(pid), int(port)
        return self

    def stop(self) -> None:
        if self.pid:
            subprocess.run([str(ROOT / "scripts/nchan/run"), "stop", str(self.pid)], check=False)
            self.pid = 0


def http_status(url: str, timeout: float = 2) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@contextlib.contextmanager
def livehub_stack(
    nodes: int = 1,
    workers: int = 1,
    env: dict[str, str] | None = None,
    durable: bool = True,
    log_dir: Path | None = None,
    name: str = "livehub",
) -> Iterator[tuple[ThrowawayPostgres, list[LivehubNode]]]:
    """A throwaway Postgres and ``nodes`` livehub processes on it; all stopped on exit."""
    pg = ThrowawayPostgres(durable=durable)
    started: list[LivehubNode] = []
    try:
        pg.start()
        secret = new_secret()
        for i in range(nodes):
            log = None
            if log_dir is not None:
                log_dir.mkdir(parents=True, exist_ok=True)
                log = log_dir / (f"{name}-{i}.log" if nodes > 1 else f"{name}.log")
            node = LivehubNode(pg.dsn(), secret, workers, dict(env or {}), log)
            started.append(node)
            node.start()
        yield pg, started
    finally:
        for node in reversed(started):
            node.stop()
        pg.stop()


def versions() -> dict[str, str]:
    """Versions of what the benchmarks run, for the JSON reports."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("trio", "hypercorn", "quart", "quart-trio", "asyncpg", "trio-asyncio"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    with contextlib.suppress(Exception):
        from livehub.db.cluster import find_bindir

        out["postgres"] = subprocess.run(
            [str(find_bindir() / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()
    with contextlib.suppress(OSError):
        out["nginx"] = subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True
        ).stderr.strip()
    with contextlib.suppress(OSError):
        out["nchan"] = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    return out


def render_nginx(
    prefix: Path, port: int, upstream_ports: list[int], edge_limits: bool = True
) -> Path:
    """deploy/nginx.conf rendered into ``prefix`` for livehub nodes on 127.0.0.1
    (``upstream_ports``), listening on ``port``; returns the config file.
    ``edge_limits=False`` lifts the per-address limits (a load test is one address)."""
    servers = "\n        ".join(
        f"server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in upstream_ports
    )
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    for key, value in {
        "@PREFIX@": str(prefix),
        "@LISTEN@": f"127.0.0.1:{port}",
        "@SERVERS@": servers,
        "@USER_LINE@": "user root;" if os.geteuid() == 0 else "",
    }.items():
        text = text.replace(key, value)
    if not edge_limits:
        text = re.sub(r"\n\s*limit_conn livehub_streams \d+;[^\n]*", "", text)
        text = re.sub(r"\n\s*limit_req zone=livehub_posts[^\n]*", "", text)
    if "@" in re.sub(r"#.*", "", text):
        raise StackError("deploy/nginx.conf: a placeholder was left unrendered")
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf
