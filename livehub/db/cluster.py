"""A private Postgres cluster over the system binaries: the embedded default and tests.

Synchronous on purpose: it runs before any event loop (``livehub serve``) or in a
session-scoped pytest fixture. As root, initdb and postgres refuse to run, so both
run as the ``postgres`` user through ``runuser``, with the data directory owned by it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "No PostgreSQL server binaries found (initdb, pg_ctl, postgres).\n"
    "Install them, e.g. on Debian/Ubuntu: sudo apt-get install postgresql\n"
    "or point LIVEHUB_DATABASE_URL at an existing database."
)


class PostgresNotFound(RuntimeError):
    """No usable initdb/pg_ctl on this machine."""


def find_bindir() -> Path:
    """The newest PostgreSQL bin directory holding initdb and pg_ctl.

    Raises:
        PostgresNotFound: none found (message says how to install them).
    """
    candidates = []
    explicit = os.environ.get("LIVEHUB_PG_BINDIR")
    if explicit:
        candidates.append(Path(explicit))
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for cand in candidates:
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    raise PostgresNotFound(INSTALL_HINT)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _ensure_postgres_user() -> None:
    """As root, Postgres runs as ``postgres``; the Debian package creates that user,
    but a machine with only the binaries unpacked may lack it."""
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/false", "postgres"],
            check=True,
            capture_output=True,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """One Postgres cluster in ``datadir``; ``start()`` / ``stop()`` it.

    Resource handling: ``stop()`` stops the postmaster by its PID file (pg_ctl),
    ``datadir`` is kept unless ``remove()`` is called.
    """

    datadir: Path
    durable: bool = True
    port: int = 0
    bindir: Path | None = None
    options: tuple[str, ...] = ()  # extra server settings, "name=value" (after ours)

    def __post_init__(self) -> None:
        self.datadir = Path(self.datadir).resolve()
        self.bindir = self.bindir or find_bindir()
        self._as_root = os.geteuid() == 0

    @property
    def sockdir(self) -> Path:
        return self.datadir.parent / (self.datadir.name + ".sock")

    @property
    def logfile(self) -> Path:
        return self.datadir / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *args: str) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _chown(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, "postgres", "postgres")

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb once; a no-op when the cluster already exists."""
        if self.initialized():
            return
        if self._as_root:
            _ensure_postgres_user()
        self.datadir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.datadir, 0o700)
        self._chown(self.datadir)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "--auth=trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-instructions",
        )

    def start(self, port: int | None = None) -> None:
        """Start on ``port`` (a free one when None) with the socket beside the data."""
        self.init()
        self.sockdir.mkdir(exist_ok=True)
        self._chown(self.sockdir)
        self.port = port or free_port()
        options = [
            f"-p {self.port}",
            f"-k {self.sockdir}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=300",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        options += [f"-c {option}" for option in self.options]
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "30",
            "-o",
            " ".join(options),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop it (``mode``: pg_ctl's ``fast``, or ``immediate`` for a crash)."""
        if not (self.datadir / "postmaster.pid").exists():
            return
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def standby(self, datadir: Path) -> Cluster:
        """A streaming standby of this (running) cluster in ``datadir``: a base backup
        with ``-R`` (standby.signal, primary_conninfo); start it with ``start()``.
        Tests of failover use it; replication from 127.0.0.1 is trusted by initdb."""
        standby = Cluster(datadir, durable=self.durable, bindir=self.bindir, options=self.options)
        datadir = standby.datadir
        datadir.mkdir(parents=True)
        os.chmod(datadir, 0o700)
        self._chown(datadir)
        self._run(
            str(self.bindir / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-D",
            str(datadir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
        )
        return standby

    def promote(self) -> None:
        """Make this standby a primary (``pg_ctl promote``, waiting until it is)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "promote")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def _run(self, *args: str) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True)
        if proc.returncode != 0:
            log = ""
            if self.logfile.exists():
                log = self.logfile.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"{' '.join(args[:1])} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}{log}"
            )
