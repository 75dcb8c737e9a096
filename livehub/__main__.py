"""``python -m livehub`` / ``livehub``: serve, migrate, token.

The load tester is a package of its own (``tools/loadtest``: ``livehub-loadtest``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

from livehub.config import Settings, SettingsError
from livehub.db.cluster import Cluster, PostgresNotFound
from livehub.node import logs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HYPERCORN_TOML = ROOT / "hypercorn.toml"


def _secret_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "jwt-secret"


def embedded_secret(settings: Settings) -> str:
    """The generated secret kept beside the embedded database (created on first use)."""
    path = _secret_file(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


@contextlib.contextmanager
def database_env(settings: Settings, need_secret: bool = True) -> Iterator[Settings]:
    """Settings with a database and a secret: the configured ones, or the embedded
    cluster under ``data_dir`` (started here, stopped on exit). ``livehub serve``
    hands them to its worker processes as they are. ``need_secret=False``
    (``migrate``): a configured database needs no token secret."""
    cluster = None
    if not settings.database_dsns():
        cluster = Cluster(Path(settings.data_dir) / "pgdata", durable=True)
        fresh = not cluster.initialized()
        verb = "creating" if fresh else "starting"
        print(f"livehub: {verb} embedded Postgres in {cluster.datadir}", file=sys.stderr)
        cluster.stop()  # a previous run killed hard may have left it running
        cluster.start()
        settings = settings.replace(database_url=cluster.dsn())
    # With an identity provider's keys (public key, JWKS) no shared secret is needed.
    wants_secret = need_secret or cluster is not None
    if not settings.jwt_secret and not settings.asymmetric_tokens and wants_secret:
        if cluster is None:
            raise SettingsError(
                "set LIVEHUB_JWT_SECRET, LIVEHUB_JWT_PUBLIC_KEY or LIVEHUB_JWT_JWKS_URL"
                " when LIVEHUB_DATABASE_URL is set"
            )
        settings = settings.replace(jwt_secret=embedded_secret(settings))
    try:
        yield settings
    finally:
        if cluster is not None:
            print("livehub: stopping embedded Postgres", file=sys.stderr)
            cluster.stop()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from hypercorn.config import Config

    from livehub.node.service import check_settings
    from livehub.node.workers import serve, worker_count

    config = Config.from_toml(args.config) if args.config else Config()
    config.application_path = "livehub.asgi:app"
    config.worker_class = "trio"
    if args.bind:
        config.bind = [args.bind]
    if args.workers is not None:
        config.workers = args.workers
    with database_env(settings) as s:
        if args.no_migrate:
            s = s.replace(migrate_on_start=False)
        check_settings(s)  # fail here, once, rather than in every worker, restarted
        print(
            f"livehub: serving on http://{config.bind[0]}"
            f" with {worker_count(config.workers)} worker(s)",
            file=sys.stderr,
        )
        return serve(config, s)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    import trio

    from livehub.db.shards import migrate_shards, open_shards

    async def main(s: Settings) -> list[list[str]]:
        one = s.replace(max_db_connections=1)
        async with open_shards(s.database_dsns(), one, "migrate") as shards:
            return await migrate_shards(shards)

    with database_env(settings, need_secret=False) as s:
        applied = trio.run(main, s)
    for index, names in enumerate(applied):
        prefix = f"shard {index}: " if len(applied) > 1 else ""
        print(prefix + ("applied: " + ", ".join(names) if names else "nothing to apply"))
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from livehub.identity.auth import mint

    secret = settings.jwt_secret
    if not secret:
        path = _secret_file(settings)
        if not path.exists():
            print(
                "no LIVEHUB_JWT_SECRET and no embedded secret yet (run `livehub serve` once)",
                file=sys.stderr,
            )
            return 2
        secret = path.read_text().strip()
    extra = {settings.roles_claim: args.role} if args.role else None
    print(mint(args.user, secret, args.ttl, name=args.name, extra=extra))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="livehub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the server (Hypercorn, trio worker)")
    p.add_argument("--bind", help="HOST:PORT, overrides the config file")
    p.add_argument("--workers", type=int, help="worker processes, overrides the config file")
    p.add_argument(
        "--config",
        default=str(DEFAULT_HYPERCORN_TOML) if DEFAULT_HYPERCORN_TOML.exists() else None,
        help="Hypercorn TOML file (default: hypercorn.toml of the project)",
    )
    p.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    sub.add_parser("migrate", help="apply pending migrations and exit")
    p = sub.add_parser("token", help="print an HS256 token for local testing")
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    p.add_argument("--name", help="display name (the token's name claim)")
    p.add_argument(
        "--role",
        action="append",
        default=[],
        help="a role to grant, e.g. moderator or moderator:<video_id> (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_format)
        handler = {"serve": cmd_serve, "migrate": cmd_migrate, "token": cmd_token}
        return handler[args.command](args, settings)
    except (SettingsError, PostgresNotFound) as exc:
        print(f"livehub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
