"""Bearer tokens: HS256 JWTs whose ``sub`` is the user id."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from types import MappingProxyType

import jwt

from .errors import Unauthorized

ALGORITHM = "HS256"
MAX_USER_ID_CHARS = 128
VERIFIED_CACHE_SIZE = 16384  # distinct live tokens remembered per process


def user_from_header(header: str | None, secret: str) -> str:
    """The user id of an ``Authorization: Bearer <JWT>`` header.

    Raises:
        Unauthorized: header missing or not Bearer, token malformed, wrongly signed,
            expired, or without a usable ``sub``.
    """
    return claims_from_header(header, secret)[0]


def verify(token: str, secret: str) -> str:
    """The user id of a valid token.

    Raises:
        Unauthorized: malformed, wrongly signed, expired, or without a usable ``sub``.
    """
    return verify_claims(token, secret)[0]


def verify_claims(token: str, secret: str) -> tuple[str, Mapping[str, object]]:
    """The user id and all claims (read-only) of a valid token (e.g. for roles).

    Raises:
        Unauthorized: as :func:`verify`.
    """
    sub, expires, claims = _verified(token, secret)
    if expires <= time.time():
        raise Unauthorized("token has expired")
    return sub, claims


def claims_from_header(header: str | None, secret: str) -> tuple[str, Mapping[str, object]]:
    """:func:`user_from_header`, with the token's claims too.

    Raises:
        Unauthorized: as :func:`user_from_header`.
    """
    if not header:
        raise Unauthorized("missing Authorization: Bearer <token> header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return verify_claims(token.strip(), secret)


@functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)
def _verified(token: str, secret: str) -> tuple[str, float, Mapping[str, object]]:
    """Signature and claims check, memoized: a poster sends the same token with every
    post, and HMAC + JSON decoding was ~4 % of a post's CPU. Only successes are cached
    (exceptions are not), and expiry is checked on every use by the caller."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_USER_ID_CHARS:
        raise Unauthorized("token subject must be a non-empty string of at most 128 characters")
    return sub, float(claims["exp"]), MappingProxyType(claims)


def mint(
    user: str,
    secret: str,
    ttl_seconds: int = 3600,
    now: float | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """An HS256 token for ``user`` valid ``ttl_seconds`` (local testing, dev page);
    ``extra`` claims (e.g. ``{"roles": ["moderator"]}``) are added."""
    issued = int(time.time() if now is None else now)
    claims = {**(extra or {}), "sub": user, "iat": issued, "exp": issued + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
