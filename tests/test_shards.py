"""livehub.core.shards (pure): the video -> shard function, which must never change;
and LOGICAL_SHARD_SQL, the same function in Postgres, checked against it."""

from __future__ import annotations

import collections
import hashlib

import pytest
import trio

from livehub.config import Settings, SettingsError, split_dsns
from livehub.core.shards import (
    LOGICAL_SHARDS,
    instance_of_logical,
    logical_shard,
    shard_of,
)
from livehub.db.bridge import open_database
from livehub.db.migrate import migrate
from livehub.db.shards import LOGICAL_SHARD_SQL

# Pinned forever: a different answer means existing videos would be looked for on
# instances that do not hold their rows.
PINNED = {"a": 1465, "video-1": 1355, "hot": 2875, "0": 132, "ZZZ_-9": 1684}


def test_logical_shard_is_the_documented_function_and_never_changes():
    assert LOGICAL_SHARDS == 4096
    for video, expected in PINNED.items():
        assert logical_shard(video) == expected
        digest = hashlib.md5(video.encode()).digest()
        assert int.from_bytes(digest[:4], "big") % 4096 == expected


def test_videos_spread_evenly_over_instances():
    counts = collections.Counter(shard_of(f"video-{i}", 4) for i in range(20_000))
    assert sorted(counts) == [0, 1, 2, 3]
    assert all(4_500 < n < 5_500 for n in counts.values()), counts


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_doubling_the_instances_moves_half_of_each_to_one_new_instance(n):
    """From N to 2N instances, logical shard l on instance i stays or moves to i + N:
    whole logical shards, and nothing moves between the old instances."""
    moved = 0
    for logical in range(LOGICAL_SHARDS):
        before = instance_of_logical(logical, n)
        after = instance_of_logical(logical, 2 * n)
        assert after in (before, before + n)
        moved += after != before
    assert abs(moved - LOGICAL_SHARDS // 2) <= n  # exactly half when N divides 4096


def test_instances_must_exist():
    with pytest.raises(ValueError):
        instance_of_logical(3, 0)


def test_database_urls_split_on_whitespace_and_keep_multi_host_dsns_whole():
    primary_standby = "postgresql://h1:5432,h2:5432/db?target_session_attrs=read-write"
    s = Settings(database_urls=f"  postgresql://a/db \n {primary_standby}  ")
    assert s.database_dsns() == ["postgresql://a/db", primary_standby]
    assert Settings(database_url="postgresql://one/db").database_dsns() == ["postgresql://one/db"]
    assert Settings(database_url="x", database_urls="y z").database_dsns() == ["y", "z"]
    assert Settings().database_dsns() == []
    with pytest.raises(SettingsError, match="twice"):
        Settings(database_urls="postgresql://a/db postgresql://a/db").database_dsns()
    assert split_dsns("") == []


async def test_postgres_computes_the_same_logical_shard(dsn):
    videos = [f"v{i}" for i in range(500)] + list(PINNED) + ["_-" * 32, "Z" * 64]
    with trio.fail_after(30):
        async with open_database(dsn) as db:
            rows = await db.fetch(
                f"SELECT video_id, {LOGICAL_SHARD_SQL} FROM unnest($1::text[]) AS t(video_id)",
                videos,
            )
    assert {r[0]: r[1] for r in rows} == {v: logical_shard(v) for v in videos}


async def test_the_documented_resharding_publication_is_valid_sql(dsn):
    """docs/OPERATIONS.md, Resharding, step 2: a row filter by LOGICAL_SHARD_SQL."""
    tables = ("videos", "comments", "video_settings", "bans", "moderation_log")
    where = f"WHERE ({LOGICAL_SHARD_SQL} % 4 = 3)"
    with trio.fail_after(30):
        async with open_database(dsn) as db:
            await migrate(db)
            await db.execute("ALTER TABLE moderation_log REPLICA IDENTITY FULL")
            await db.execute(
                "CREATE PUBLICATION move_to_3 FOR TABLE "
                + ", ".join(f"{t} {where}" for t in tables)
            )
            rows = await db.fetch(
                "SELECT tablename FROM pg_publication_tables WHERE pubname = 'move_to_3'"
            )
            await db.execute("DROP PUBLICATION move_to_3")
    assert sorted(r[0] for r in rows) == sorted(tables)
