"""PURE: who may moderate what, from a token's roles claim.

A token's roles come from one claim (``roles`` by default; ``LIVEHUB_ROLES_CLAIM``):
a JSON list of strings, or one string of space-separated roles (OAuth ``scope``
style). ``moderator`` may moderate every video; ``moderator:<video_id>`` only that
video. Anything else in the claim is ignored; a malformed claim grants nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MODERATOR = "moderator"
MAX_ROLES = 1000  # a claim with more entries than this is not a role list we honour


@dataclass(frozen=True)
class Principal:
    """A verified caller: the token's ``sub`` and its roles."""

    user_id: str
    roles: frozenset[str] = frozenset()

    def moderates(self, video_id: str) -> bool:
        return can_moderate(self.roles, video_id)


def roles_from_claims(claims: Mapping[str, object], claim_name: str = "roles") -> frozenset[str]:
    """The roles in ``claims[claim_name]`` (empty when absent or malformed)."""
    raw = claims.get(claim_name)
    if isinstance(raw, str):
        items: list[object] = list(raw.split())
    elif isinstance(raw, list) and len(raw) <= MAX_ROLES:
        items = raw
    else:
        return frozenset()
    return frozenset(r.strip() for r in items if isinstance(r, str) and r.strip())


def can_moderate(roles: frozenset[str], video_id: str) -> bool:
    """``moderator`` moderates every video, ``moderator:<video_id>`` that one."""
    return MODERATOR in roles or f"{MODERATOR}:{video_id}" in roles
