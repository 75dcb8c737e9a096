"""migrations and livehub/db/migrate.py: a fresh database gets the schema, once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
import trio_asyncio

from livehub.db.bridge import open_database
from livehub.db.migrate import MIGRATIONS_DIR, load_migrations, migrate

from .support import ROOT


async def columns(db, table: str) -> dict[str, tuple[str, str]]:
    rows = await db.fetch(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = $1",
        table,
    )
    return {r[0]: (r[1], r[2]) for r in rows}


async def primary_key(db, table: str) -> list[str]:
    rows = await db.fetch(
        "SELECT a.attname FROM pg_index i"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.ord",
        table,
    )
    return [r[0] for r in rows]


async def test_migrations_create_the_schema_and_record_themselves(dsn):
    with trio.fail_after(20):
        async with open_database(dsn, max_size=2) as db:
            names = [m.name for m in load_migrations()]
            assert names and names[0] == "0001_comments.sql"
            assert await migrate(db) == names
            tables = {
                r[0]
                for r in await db.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            }
            assert {"videos", "comments", "schema_migrations"} <= tables
            assert await columns(db, "videos") == {
                "video_id": ("text", "NO"),
                "last_seq": ("bigint", "NO"),
                "created_at": ("timestamp with time zone", "NO"),
            }
            assert await columns(db, "comments") == {
                "video_id": ("text", "NO"),
                "seq": ("bigint", "NO"),
                "user_id": ("text", "NO"),
                "message": ("text", "NO"),
                "created_at": ("timestamp with time zone", "NO"),
                "user_name": ("text", "YES"),  # 0003: NULL when the token had no name
                "kind": ("text", "NO"),  # 0004: comment, deleted, pinned, settings
                "target_seq": ("bigint", "YES"),
                "deleted_at": ("timestamp with time zone", "YES"),
            }
            assert await primary_key(db, "comments") == ["video_id", "seq"]
            assert await primary_key(db, "videos") == ["video_id"]
            rows = await db.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
            assert [(r[0], r[1]) for r in rows] == [(m.version, m.name) for m in load_migrations()]
            # the primary key really orders writers: a duplicate seq is refused
            await db.execute(
                "INSERT INTO comments (video_id, seq, user_id, message) VALUES ('v', 1, 'u', 'm')"
            )
            with pytest.raises(Exception, match="duplicate key"):
                await db.execute(
                    "INSERT INTO comments (video_id, seq, user_id, message)"
                    " VALUES ('v', 1, 'u', 'x')"
                )


async def test_moderation_migration_puts_events_in_the_comment_stream(dsn):
    """0004: moderation events share the comments table (and its seqs); bans,
    per-video settings and the moderation log get tables of their own."""
    with trio.fail_after(20):
        async with open_database(dsn, max_size=2) as db:
            await migrate(db)
            comment_columns = await columns(db, "comments")
            assert comment_columns["kind"] == ("text", "NO")
            assert comment_columns["target_seq"] == ("bigint", "YES")
            assert comment_columns["deleted_at"] == ("timestamp with time zone", "YES")
            assert await primary_key(db, "bans") == ["video_id", "user_id"]
            assert await primary_key(db, "video_settings") == ["video_id"]
            assert await primary_key(db, "moderation_log") == ["id"]
            # existing inserts (no kind) are comments; unknown kinds are refused
            await db.execute(
                "INSERT INTO comments (video_id, seq, user_id, message) VALUES ('v', 1, 'u', 'm')"
            )
            assert await db.fetchval("SELECT kind FROM comments WHERE seq = 1") == "comment"
            with pytest.raises(Exception, match="check constraint"):
                await db.execute(
                    "INSERT INTO comments (video_id, seq, user_id, message, kind)"
                    " VALUES ('v', 2, 'u', '', 'bogus')"
                )


async def test_migrating_twice_is_a_no_op(dsn):
    with trio.fail_after(20):
        async with open_database(dsn, max_size=2) as db:
            assert await migrate(db) != []
            await db.execute("INSERT INTO videos (video_id, last_seq) VALUES ('kept', 7)")
            assert await migrate(db) == []
            assert await db.fetchval("SELECT count(*) FROM schema_migrations") == len(
                load_migrations()
            )
            assert await db.fetchval("SELECT last_seq FROM videos WHERE video_id = 'kept'") == 7


def write_migrations(directory: Path) -> list[str]:
    files = {
        "0001_first.sql": "CREATE TABLE one (id int PRIMARY KEY);",
        # slow, so concurrent migrators really overlap while it runs
        "0002_slow.sql": "SELECT pg_sleep(0.3); CREATE TABLE two (id int);",
        "0010_third.sql": "ALTER TABLE one ADD COLUMN note text; INSERT INTO one VALUES (1);",
    }
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return sorted(files)


async def test_concurrent_migrators_apply_each_migration_exactly_once(dsn, tmp_path):
    names = write_migrations(tmp_path)
    results: list[list[str]] = []

    async def node() -> None:
        # a separate pool (so a separate Postgres session) per "node"
        async with open_database(dsn, max_size=1) as db:
            results.append(await migrate(db, tmp_path))

    with trio.fail_after(30):
        async with trio_asyncio.open_loop():
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(node)
            async with open_database(dsn, max_size=1) as db:
                rows = await db.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
                one = await db.fetch("SELECT id, note FROM one")
    assert len(results) == 5
    assert sorted(n for r in results for n in r) == names  # each applied by exactly one node
    assert [(r[0], r[1]) for r in rows] == [(1, names[0]), (2, names[1]), (10, names[2])]
    assert [(r[0], r[1]) for r in one] == [(1, None)]  # 0010 ran once: one row, not five


async def test_a_failing_migration_is_rolled_back_and_not_recorded(dsn, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELEC oops;")
    with trio.fail_after(20):
        async with open_database(dsn, max_size=1) as db:
            with pytest.raises(Exception, match="syntax error"):
                await migrate(db, tmp_path)
            assert await db.fetchval("SELECT array_agg(version) FROM schema_migrations") == [1]
            assert await db.fetchval("SELECT to_regclass('half')") is None  # rolled back whole
            # the advisory lock was released: fixing the file lets the next run finish
            (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int);")
            assert await migrate(db, tmp_path) == ["0002_bad.sql"]


@pytest.mark.parametrize(
    "bad", ["1_short.sql", "0003-dash.sql", "0003_Upper.sql", "abcd_x.sql", "0003_.sql"]
)
def test_load_migrations_rejects_a_misnamed_file(tmp_path, bad):
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / bad).write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


def test_load_migrations_rejects_a_duplicate_version(tmp_path):
    (tmp_path / "0002_a.sql").write_text("SELECT 1;")
    (tmp_path / "0002_b.sql").write_text("SELECT 2;")
    with pytest.raises(ValueError, match="version 2"):
        load_migrations(tmp_path)


def test_load_migrations_orders_by_version_and_reads_the_sql(tmp_path):
    (tmp_path / "0010_late.sql").write_text("SELECT 10;")
    (tmp_path / "0002_early.sql").write_text("SELECT 2;")
    (tmp_path / "notes.txt").write_text("not a migration")
    ms = load_migrations(tmp_path)
    assert [(m.version, m.name, m.sql) for m in ms] == [
        (2, "0002_early.sql", "SELECT 2;"),
        (10, "0010_late.sql", "SELECT 10;"),
    ]


def test_shipped_migrations_are_well_formed():
    ms = load_migrations(MIGRATIONS_DIR)
    versions = [m.version for m in ms]
    assert versions == list(range(1, len(ms) + 1))  # 1, 2, 3, ... no gaps, no repeats
    for m in ms:
        assert m.sql.startswith("-- purpose:"), m.name


def cli_env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEHUB_")}
    env["LIVEHUB_DATABASE_URL"] = dsn  # no secret: migrating needs none
    return env


async def test_cli_migrate_prints_what_it_applied_then_nothing(dsn):
    cmd = [sys.executable, "-m", "livehub", "migrate"]
    with trio.fail_after(40):
        first = await trio.run_process(
            cmd, env=cli_env(dsn), cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False
        )
        assert first.returncode == 0, first.stderr.decode()
        names = ", ".join(m.name for m in load_migrations())
        assert first.stdout.decode().strip() == f"applied: {names}"
        second = await trio.run_process(
            cmd, env=cli_env(dsn), cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False
        )
        assert second.returncode == 0, second.stderr.decode()
        assert second.stdout.decode().strip() == "nothing to apply"


async def test_a_migration_slower_than_the_query_timeout_still_applies(dsn, tmp_path):
    # Building an index on a big table takes longer than a request's query timeout;
    # migrate asks for a longer one and must get it (it once died at the pool's).
    (tmp_path / "0001_slow.sql").write_text("SELECT pg_sleep(1.2); CREATE TABLE done (id int);")
    with trio.fail_after(20):
        async with open_database(dsn, max_size=1, timeout_seconds=0.5) as db:
            assert await migrate(db, tmp_path) == ["0001_slow.sql"]
            assert await db.fetchval("SELECT to_regclass('done')::text") == "done"


async def test_a_node_waits_for_another_nodes_long_migration(dsn, tmp_path):
    (tmp_path / "0001_slow.sql").write_text("SELECT pg_sleep(1.2); CREATE TABLE done (id int);")
    results: list[list[str]] = []

    async def node() -> None:
        async with open_database(dsn, max_size=1, timeout_seconds=0.5) as db:
            results.append(await migrate(db, tmp_path))

    with trio.fail_after(20):
        async with trio_asyncio.open_loop():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(node)
                nursery.start_soon(node)
    assert sorted(results) == [[], ["0001_slow.sql"]]
