"""PURE: which shard holds a video. This function must never change.

A video belongs to one of ``LOGICAL_SHARDS`` logical shards, fixed forever:

    logical_shard(video_id) = first 4 bytes of md5(utf-8 of video_id), big-endian,
                              mod 4096

and logical shard ``l`` lives on Postgres instance ``l mod N`` of the ``N`` listed in
``LIVEHUB_DATABASE_URLS`` (in that order). Growing from N to 2N instances moves, from
each instance ``i``, exactly its logical shards with ``l mod 2N = i + N`` to the new
instance ``i + N``: whole logical shards, half of each instance, and nothing between
the old instances (docs/OPERATIONS.md, "Resharding"). Postgres computes the same
number with ``LOGICAL_SHARD_SQL`` (``livehub/db/shards.py``), so a publication's row
filter can select a logical shard's rows; ``tests/test_shards.py`` checks they agree.

Changing the hash, ``LOGICAL_SHARDS`` or the mapping would put existing videos on
instances that do not hold their rows: never do it.
"""

from __future__ import annotations

import functools
import hashlib

LOGICAL_SHARDS = 4096  # fixed forever: more than any deployment's instances, a power of 2


@functools.lru_cache(maxsize=65536)  # the post path asks several times per comment
def logical_shard(video_id: str) -> int:
    """The video's logical shard, 0..LOGICAL_SHARDS-1 (stable across versions)."""
    digest = hashlib.md5(video_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % LOGICAL_SHARDS


def instance_of_logical(logical: int, instances: int) -> int:
    """The instance (index into the DSN list) holding logical shard ``logical``."""
    if instances < 1:
        raise ValueError("at least one database instance is needed")
    return logical % instances


def shard_of(video_id: str, instances: int) -> int:
    """The instance (index into the DSN list) holding ``video_id``."""
    return instance_of_logical(logical_shard(video_id), instances)
