"""The command line as users run it: the README's embedded default, operators' own
Hypercorn with several workers, and the clear failures."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import trio

from livehub import __main__ as cli
from livehub.db import cluster as pgcluster
from livehub.db.cluster import free_port

from .support import ROOT, SECRET, auth, create_database, server_env, start_process


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any LIVEHUB_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEHUB_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def livehub_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "livehub", *args]


def run_livehub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``livehub ARGS`` to its end (bounded), its output captured as text."""
    return subprocess.run(
        livehub_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def hypercorn_workers(pid: int) -> list[int]:
    """Hypercorn's worker processes (multiprocessing spawn children, not its tracker)."""
    return [
        p
        for p in children_of(pid)
        if alive(p) and b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]


def postmaster_pid(datadir: Path) -> int:
    return int((datadir / "postmaster.pid").read_text().splitlines()[0])


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(proc.name))
    return pids


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


def exits_soon(pid: int, within: float = 3) -> bool:
    """pg_ctl stop returns once the PID file is gone, a moment before the exit."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def data_dir():
    path = Path(tempfile.mkdtemp(prefix="livehub-data-"))
    os.chmod(path, 0o755)  # the embedded cluster runs as the postgres user
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve_embedded(data_dir: Path):
    port = free_port()
    env = clean_env(LIVEHUB_DATA_DIR=str(data_dir))
    return start_process(livehub_cmd("serve", "--bind", f"127.0.0.1:{port}"), env, port, 60)


def sigterm_and_wait(server, within: float) -> float:
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(within)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {within}s after SIGTERM:\n{server.log()}") from None
    return time.monotonic() - started


def test_embedded_default_serves_stops_cleanly_and_keeps_its_data(data_dir):
    pgdata = data_dir / "pgdata"
    server = serve_embedded(data_dir)
    try:
        assert (pgdata / "PG_VERSION").exists()
        postmaster = postmaster_pid(pgdata)
        assert alive(postmaster)
        out = run_livehub(
            "token",
            "--user",
            "x",
            "--name",
            "Ex Ample",
            env=clean_env(LIVEHUB_DATA_DIR=str(data_dir)),
        )
        assert out.returncode == 0, out.stderr
        headers = {"Authorization": f"Bearer {out.stdout.strip()}"}
        r = httpx.post(server.url + "/comments/launch", json={"message": "kept"}, headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["user_id"] == "x" and r.json()["seq"] == 1
        assert r.json()["user_name"] == "Ex Ample"
        page = httpx.get(server.url + "/comments/launch").json()
        assert [c["message"] for c in page["comments"]] == ["kept"]
        assert (
            httpx.post(server.url + "/comments/launch", json={"message": "no"}).status_code == 401
        )

        sigterm_and_wait(server, within=15)
        assert server.proc.returncode == 0, server.log()
        assert "stopping embedded Postgres" in server.log()
        assert not (pgdata / "postmaster.pid").exists()
        assert exits_soon(postmaster)
        assert [p for p in processes_mentioning(str(pgdata)) if alive(p)] == []
    finally:
        server.stop()

    server = serve_embedded(data_dir)  # a second start reuses the same cluster and secret
    try:
        page = httpx.get(server.url + "/comments/launch").json()
        assert [c["message"] for c in page["comments"]] == ["kept"]
        r = httpx.post(server.url + "/comments/launch", json={"message": "again"}, headers=headers)
        assert r.status_code == 201 and r.json()["seq"] == 2, r.text
        assert "starting embedded Postgres" in server.log()
    finally:
        server.stop()
    assert not (pgdata / "postmaster.pid").exists()


async def test_operators_hypercorn_with_two_workers_keeps_seqs_contiguous(pg_cluster):
    port = free_port()
    hypercorn = str(Path(sys.executable).parent / "hypercorn")
    args = [hypercorn, "--config", "hypercorn.toml", "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", "2", "livehub.asgi:app"]
    env = server_env(create_database(pg_cluster))
    server = await trio.to_thread.run_sync(lambda: start_process(args, env, port))
    try:
        workers = hypercorn_workers(server.proc.pid)
        assert len(workers) == 2, workers  # --workers 2 took effect
        seqs: list[int] = []

        async def post(i: int) -> None:
            # a new connection per post, so the kernel spreads them over both workers
            async with httpx.AsyncClient(base_url=server.url, timeout=15) as c:
                r = await c.post("/comments/hot", json={"message": f"m{i}"}, headers=auth())
                assert r.status_code == 201, r.text
                seqs.append(r.json()["seq"])

        with trio.fail_after(40):
            async with trio.open_nursery() as nursery:
                for i in range(120):
                    nursery.start_soon(post, i)
            assert sorted(seqs) == list(range(1, 121))
            async with httpx.AsyncClient(base_url=server.url, timeout=15) as c:
                page = (await c.get("/comments/hot?since=0&pagesize=500")).json()["comments"]
                assert [x["seq"] for x in page] == list(range(1, 121))
                assert sorted(x["message"] for x in page) == sorted(f"m{i}" for i in range(120))
                newest = (await c.get("/comments/hot?pagesize=2")).json()
                assert [x["seq"] for x in newest["comments"]] == [120, 119]
                assert (await c.get("/readyz")).status_code == 200
    finally:
        await trio.to_thread.run_sync(server.stop)
    assert server.proc.returncode is not None


def test_serve_with_a_database_but_no_secret_exits_with_a_clear_message(pg_cluster):
    env = clean_env(LIVEHUB_DATABASE_URL=pg_cluster.dsn())
    out = run_livehub("serve", "--bind", f"127.0.0.1:{free_port()}", env=env)
    assert out.returncode != 0
    assert "LIVEHUB_JWT_SECRET" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("LIVEHUB_PUBLISH_PROXY_URL", "ftp://review.example", "LIVEHUB_PUBLISH_PROXY"),
        ("LIVEHUB_TRUSTED_PROXIES", "not-an-address", "LIVEHUB_TRUSTED_PROXIES"),
        ("LIVEHUB_SLOW_MODE_VIDEOS", "v=forever", "posting limits"),
    ],
)
def test_serve_with_a_bad_setting_exits_at_once_instead_of_restarting_workers(
    pg_cluster, variable, value, named
):
    env = clean_env(LIVEHUB_DATABASE_URL=pg_cluster.dsn(), LIVEHUB_JWT_SECRET=SECRET)
    env[variable] = value
    out = run_livehub("serve", "--bind", f"127.0.0.1:{free_port()}", env=env)
    assert out.returncode == 2
    assert named in out.stderr
    assert "Traceback" not in out.stderr and "serving on" not in out.stderr


@pytest.fixture
def no_postgres_binaries(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("LIVEHUB_PG_BINDIR", str(empty))
    monkeypatch.setenv("PATH", str(empty))  # no pg_config, no initdb
    # the /usr/lib/postgresql/*/bin of this machine cannot be hidden otherwise
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: [])
    return empty


def test_find_bindir_says_how_to_install_postgres(no_postgres_binaries):
    with pytest.raises(pgcluster.PostgresNotFound) as info:
        pgcluster.find_bindir()
    assert "apt-get install postgresql" in str(info.value)
    assert "LIVEHUB_DATABASE_URL" in str(info.value)


def test_serve_without_postgres_binaries_exits_non_zero_with_the_hint(
    no_postgres_binaries, monkeypatch, tmp_path, capsys
):
    for name in ("LIVEHUB_DATABASE_URL", "LIVEHUB_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIVEHUB_DATA_DIR", str(tmp_path / "data"))
    code = cli.main(["serve", "--bind", f"127.0.0.1:{free_port()}"])
    assert code != 0
    err = capsys.readouterr().err
    assert "No PostgreSQL server binaries found" in err
    assert "apt-get install postgresql" in err
    assert not (tmp_path / "data" / "pgdata").exists()  # nothing half-created


def test_find_bindir_prefers_livehub_pg_bindir_and_skips_an_empty_one(monkeypatch, tmp_path):
    system = pgcluster.find_bindir()
    assert (system / "initdb").exists() and (system / "pg_ctl").exists()
    fake = tmp_path / "pg" / "bin"
    fake.mkdir(parents=True)
    (fake / "initdb").touch()
    (fake / "pg_ctl").touch()
    monkeypatch.setenv("LIVEHUB_PG_BINDIR", str(fake))
    assert pgcluster.find_bindir() == fake
    monkeypatch.setenv("LIVEHUB_PG_BINDIR", str(tmp_path))  # holds no initdb: not used
    assert pgcluster.find_bindir() == system


def test_token_command_grants_roles_in_the_roles_claim():
    import jwt

    from livehub.core.roles import roles_from_claims

    out = run_livehub(
        "token",
        "--user",
        "mod",
        "--role",
        "moderator:launch",
        "--role",
        "x",
        env=clean_env(LIVEHUB_JWT_SECRET=SECRET),
    )
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "mod" and roles_from_claims(claims) == {"moderator:launch", "x"}
