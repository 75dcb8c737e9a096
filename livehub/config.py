"""Settings: one frozen value, read from the environment once.

Every field is named with its unit. ``Settings.from_env()`` is the only reader of
``LIVEHUB_*`` variables; everything else receives a ``Settings``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

ENV_PREFIX = "LIVEHUB_"


# Limits are named max_<what>. The names these had before (``<what>_max``) are still
# read when the new one is not set, so existing deployments keep their settings.
FORMER_NAMES = {
    "max_db_connections": "db_pool_max",
    "max_page_size": "page_size_max",
    "max_backlog": "backlog_max",
    "max_batch": "batch_max",
}


class SettingsError(ValueError):
    """An environment variable could not be parsed."""


@dataclass(frozen=True)
class Settings:
    # Where comments live. Empty: `livehub serve` starts the embedded cluster.
    database_url: str = ""
    # Several Postgres instances (shards), DSNs separated by spaces, in shard order;
    # when set it replaces database_url. A video lives on one shard
    # (livehub/core/shards.py); never reorder or remove entries.
    database_urls: str = ""
    # HS256 secret for bearer tokens. Empty: generated beside the embedded cluster,
    # unless an identity provider's keys (public key or JWKS) are configured.
    jwt_secret: str = ""
    # A PEM file holding one public key (RSA, EC, Ed25519) that signs tokens.
    jwt_public_key: str = ""
    # An identity provider's JWKS URL: RS/PS/ES/EdDSA tokens are checked by their kid.
    jwt_jwks_url: str = ""
    # Checked when set: the token's iss must equal it; its aud must hold one of these
    # (comma-separated).
    jwt_issuer: str = ""
    jwt_audience: str = ""
    # The claim holding the user id, and the one holding a display name (empty: none).
    jwt_user_claim: str = "sub"
    jwt_name_claim: str = "name"
    # Clock skew allowed on iat/nbf (a token "issued" slightly in our future).
    jwt_leeway_seconds: float = 30.0
    # JWKS: periodic refresh; at most one fetch per min interval (unknown kids ask for
    # one); bound on one fetch.
    jwks_refresh_seconds: float = 300.0
    jwks_min_refresh_seconds: float = 5.0
    jwks_timeout_seconds: float = 5.0
    # Origins of sites embedding livehub (comma-separated, exact like
    # https://site.example, or * for read-only endpoints): CORS grants, frame-ancestors,
    # WebSocket origin check, token postMessage to the iframe. Empty: same origin only.
    cors_origins: str = ""
    # Directory holding the embedded cluster (pgdata/) and its generated secret.
    data_dir: str = ".livehub"
    # What `livehub serve` runs the app on: "lean" (livehub's own Trio connection layer
    # over h11, docs/ARCHITECTURE.md) or "hypercorn" (Hypercorn's trio worker; also what
    # TLS in hypercorn.toml gets).
    server: str = "lean"
    # Apply pending migrations when the server starts.
    migrate_on_start: bool = True
    # asyncpg pool size per worker process (multiply by workers for Postgres); the pool
    # connects lazily, so there is no minimum.
    max_db_connections: int = 10
    # A query that takes longer fails with 503 instead of hanging the request.
    db_command_timeout_seconds: float = 5.0
    # How long /readyz waits for Postgres.
    ready_timeout_seconds: float = 2.0

    # Input limits.
    max_body_bytes: int = 16 * 1024
    # A request body (or, on livehub serve, a request head once it started) that has not
    # fully arrived after this long gets 408 and the connection is closed.
    body_timeout_seconds: float = 10.0
    max_message_chars: int = 2000
    page_size_default: int = 50
    max_page_size: int = 500

    # Live delivery.
    ring_size: int = 1000
    max_backlog: int = 1000
    subscriber_queue_frames: int = 256
    heartbeat_seconds: float = 15.0
    sse_retry_ms: int = 1000
    stall_timeout_seconds: float = 60.0
    actor_idle_seconds: float = 30.0
    inbox_size: int = 4096
    # Posts waiting for the next insert transaction of one video; past it a post waits
    # up to db_command_timeout_seconds for room, then gets 503.
    post_queue_size: int = 4096
    # Group commit: posts per transaction at most; 1 disables batching (baseline).
    max_batch: int = 500
    # Bus.
    # NOTIFY channels (a video's is crc32 mod this, livehub/core/wakeup.py). A node
    # LISTENs to the channels of the videos it has actors for and hears every NOTIFY on
    # them, so many more channels than videos a node holds keep it from hearing (and
    # decoding) the other nodes' videos (docs/BENCHMARKS.md, n).
    notify_channels: int = 4096
    notify_batch_seconds: float = 0.002
    notify_inline_max_bytes: int = 7500
    resync_interval_seconds: float = 2.0
    # Adaptive write coalescing: writes/s budget of one node before delays grow.
    write_budget_per_second: float = 10000.0
    coalesce_max_seconds: float = 0.1

    # Moderation (docs/OPERATIONS.md): the token claim holding a user's roles
    # ("moderator", "moderator:<video_id>"), and how often each node re-reads the bans
    # and chat settings of the videos it serves (a change reaches every node within
    # this plus one query).
    roles_claim: str = "roles"
    moderation_refresh_seconds: float = 0.5

    # Publish proxy (docs/OPERATIONS.md): before a post is stored, its video's posts
    # waiting meanwhile are sent in one signed request to this URL, which accepts,
    # rejects or changes each. Empty: off (the post path costs nothing more).
    publish_proxy_url: str = ""
    # HMAC-SHA256 key of the X-Livehub-Signature header (required with the URL).
    publish_proxy_secret: str = ""
    # The whole request, connection included, must be answered within this.
    publish_proxy_timeout_seconds: float = 0.5
    # When the proxy fails (timeout, error, bad answer): "open" stores the post as
    # posted, "closed" answers 503 with Retry-After and stores nothing.
    publish_proxy_failure: str = "open"
    # Connections to the proxy per node (kept alive); posts per request at most.
    publish_proxy_max_connections: int = 20
    publish_proxy_max_batch: int = 100

    # Webhooks (docs/OPERATIONS.md): events after the fact, delivered at least once
    # from Postgres (migration 0005), signed like the proxy. Empty URL: off.
    webhook_url: str = ""
    webhook_secret: str = ""
    # One delivery request must be answered (2xx) within this, or it is retried.
    webhook_timeout_seconds: float = 5.0
    # Retry backoff: base, doubling per failed attempt, capped.
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_max_seconds: float = 300.0
    # Events per delivery request at most.
    webhook_max_batch: int = 100
    # Each node looks for undelivered events this often (its own commits wake it at
    # once), and scans every video for leftovers of other nodes this often.
    webhook_poll_seconds: float = 1.0
    webhook_sweep_seconds: float = 10.0

    # Dev-only token endpoint for the viewer page.
    dev_tokens: bool = False

    # Limits (docs/OPERATIONS.md). Posting: a token bucket per user per node.
    post_rate_per_second: float = 5.0
    post_burst: int = 10
    # Slow mode: minimum seconds between one user's posts on one video (0: off), and
    # per-video overrides as "video=seconds,other=seconds".
    slow_mode_seconds: float = 0.0
    slow_mode_videos: str = ""
    # Open SSE + WebSocket streams one node accepts; past it new ones get 503.
    max_streams: int = 10000
    # Open streams one client (address, see trusted_proxies) may hold on one node;
    # past it: 429 too_many_streams. 0: no cap.
    max_streams_per_client: int = 100
    # Proxies (addresses or CIDRs, comma or space separated) whose X-Forwarded-For
    # names the client; empty: the peer address is the client.
    trusted_proxies: str = ""
    # Retry-After (seconds) on a 503 for a full node or one shutting down.
    overload_retry_seconds: float = 2.0

    # Viewer counts: each node publishes its own every interval; rows older than the
    # TTL (a node that died) are ignored.
    viewer_count_seconds: float = 3.0
    viewer_count_ttl_seconds: float = 15.0

    # Graceful shutdown: how long draining (ending streams, finishing posts) may take
    # before Hypercorn's own graceful_timeout starts.
    drain_timeout_seconds: float = 5.0
    # Logs: "json" (one object per line) or "text"; access_log: one line per request.
    log_format: str = "json"
    access_log: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``LIVEHUB_<FIELD>`` variables, then ``overrides``.

        Raises:
            SettingsError: a variable does not parse as its field's type.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if not raw and field.name in FORMER_NAMES:
                raw = env.get(ENV_PREFIX + FORMER_NAMES[field.name].upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(field.name, field.type, raw)
        values.update(overrides)
        return cls(**values)

    @property
    def asymmetric_tokens(self) -> bool:
        """Tokens are checked by an identity provider's keys (no shared secret needed)."""
        return bool(self.jwt_public_key or self.jwt_jwks_url)

    def database_dsns(self) -> list[str]:
        """One DSN per shard, in shard order (empty: no database configured).

        Raises:
            SettingsError: LIVEHUB_DATABASE_URLS lists a database twice.
        """
        if not self.database_urls.strip():
            return [self.database_url] if self.database_url else []
        try:
            return split_dsns(self.database_urls)
        except ValueError as exc:
            raise SettingsError(f"LIVEHUB_DATABASE_URLS: {exc}") from None

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)


def split_dsns(urls: str) -> list[str]:
    """``LIVEHUB_DATABASE_URLS``: DSNs separated by whitespace, in shard order (a DSN
    may itself list several hosts with commas: a primary and its standbys).

    Raises:
        ValueError: the same DSN is listed twice (two shards cannot share one database).
    """
    dsns = urls.split()
    if len(set(dsns)) != len(dsns):
        raise ValueError("a database is listed twice")
    return dsns


def _parse(name: str, type_name: object, raw: str) -> object:
    kind = str(type_name)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
