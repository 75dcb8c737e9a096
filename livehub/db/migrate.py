"""Apply ``livehub/db/migrations/NNNN_*.sql`` in order, once each, under an advisory lock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from livehub.db.bridge import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
NAME_RE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
# Any constant shared by every node; "lvhb" in ASCII.
ADVISORY_LOCK_KEY = 0x6C766862
# Waiting for another node's migrations, or building an index, outlasts a request's
# query timeout (the pool's default): these statements say how long they may take.
MIGRATE_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in version order.

    Raises:
        ValueError: a misnamed file or two files with one version.
    """
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = NAME_RE.fullmatch(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version}")
        found[version] = Migration(version, path.name, path.read_text())
    return [found[v] for v in sorted(found)]


async def migrate(db: Database, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied (empty: nothing to do).

    Each runs in its own transaction with its ``schema_migrations`` row; a session
    advisory lock makes nodes starting at once apply each migration exactly once.
    """
    migrations = load_migrations(directory)

    async def run(conn) -> list[str]:  # asyncio side
        applied: list[str] = []
        await conn.execute(
            "SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY, timeout=MIGRATE_TIMEOUT_SECONDS
        )
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for m in migrations:
                if m.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql, timeout=MIGRATE_TIMEOUT_SECONDS)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        m.version,
                        m.name,
                    )
                applied.append(m.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
        return applied

    # Another node may hold the lock while it migrates: wait longer than a query.
    return await db.with_connection(run, timeout_seconds=MIGRATE_TIMEOUT_SECONDS + 5)
