"""Bearer tokens: JWTs checked by a ``TokenVerifier`` built once from Settings.

Three ways to trust a token, any combination:
- HS256 with ``LIVEHUB_JWT_SECRET`` (a secret shared with the site);
- RS*/PS*/ES*/EdDSA with one fixed public key (``LIVEHUB_JWT_PUBLIC_KEY``, a PEM file);
- RS*/PS*/ES*/EdDSA with an identity provider's JWKS (``LIVEHUB_JWT_JWKS_URL``), by
  the token's ``kid`` (``jwks.py`` keeps the keys fresh).
The algorithm a token names must belong to a configured way: HS256 is refused when no
secret is configured (so a token "signed" with a public key as HMAC secret is never
checked against it) and ``none`` always is. ``iss`` and ``aud`` are checked when set;
``iat`` and ``nbf`` may be up to ``jwt_leeway_seconds`` in the future (clock skew);
``exp`` is required and strict. The user id claim (``sub``) must be printable and
bounded (``validate.user_id_claim``); the display name claim is optional.

Verified tokens are remembered (a poster sends the same token with every post; measured
on the 2-core dev box under load, an RS256 check took ~170 us and ES256 ~300 us, a
third to a half of a whole POST's CPU, against < 1 us for a remembered token; HMAC +
JSON was ~4 % of a post): a remembered token is served
only before its ``exp`` and, for a JWKS key, only while that very key is still in the
key set held now, so a key the provider removed stops working as soon as a refresh
sees it gone (at most ``jwks_refresh_seconds`` later).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import jwt
import trio
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from livehub.config import Settings, SettingsError
from livehub.core import validate
from livehub.core.errors import Unauthorized
from livehub.identity.jwks import ASYMMETRIC_ALGORITHMS, JwksKeys

HMAC_ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 16384  # distinct live tokens remembered per process
MAX_USER_ID_CHARS = validate.MAX_USER_ID_CHARS


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token speaks for."""

    user_id: str
    user_name: str | None = None
    # Every claim of the token, read-only (roles for moderation: ``roles.py``).
    claims: Mapping[str, object] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: Identity
    expires: float
    jwks_kid: str | None  # checked against the JWKS: the key it was checked with
    jwks_key: object | None


class TokenVerifier:
    """Checks bearer tokens; one per process, built by :meth:`from_settings`.

    Resource handling: a JWKS verifier needs :meth:`run` in a nursery (the key refresh).
    """

    def __init__(
        self,
        *,
        secret: str = "",
        public_key: object | None = None,
        jwks: JwksKeys | None = None,
        issuer: str = "",
        audience: tuple[str, ...] = (),
        user_claim: str = "sub",
        name_claim: str = "",
        leeway_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (secret or public_key is not None or jwks is not None):
            raise SettingsError(
                "no way to check tokens: set LIVEHUB_JWT_SECRET, LIVEHUB_JWT_PUBLIC_KEY "
                "or LIVEHUB_JWT_JWKS_URL"
            )
        self._secret = secret
        self._public_key = public_key
        self._public_algorithms = _algorithms_of(public_key) if public_key is not None else ()
        self.jwks = jwks
        self._issuer = issuer or None
        self._audience = list(audience) or None
        self._user_claim = user_claim
        self._name_claim = name_claim
        self._leeway = leeway_seconds
        self._clock = clock
        self._require = ["exp", user_claim]
        self._cache: dict[str, _Verified] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """Raises:
        SettingsError: no way to check tokens, or an unreadable public key file."""
        public_key = None
        if settings.jwt_public_key:
            public_key = load_public_key(Path(settings.jwt_public_key))
        jwks = None
        if settings.jwt_jwks_url:
            try:
                jwks = JwksKeys(
                    settings.jwt_jwks_url,
                    settings.jwks_refresh_seconds,
                    settings.jwks_min_refresh_seconds,
                    settings.jwks_timeout_seconds,
                )
            except jwt.PyJWKClientError as exc:
                raise SettingsError(f"LIVEHUB_JWT_JWKS_URL: {exc}") from None
        audience = tuple(a.strip() for a in settings.jwt_audience.split(",") if a.strip())
        return cls(
            secret=settings.jwt_secret,
            public_key=public_key,
            jwks=jwks,
            issuer=settings.jwt_issuer,
            audience=audience,
            user_claim=settings.jwt_user_claim,
            name_claim=settings.jwt_name_claim,
            leeway_seconds=settings.jwt_leeway_seconds,
        )

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Keep the JWKS fresh (returns at once without one)."""
        if self.jwks is None:
            task_status.started()
            return
        await self.jwks.run(task_status=task_status)

    async def verify_header(self, header: str | None) -> Identity:
        """The identity of an ``Authorization: Bearer <JWT>`` header.

        Raises:
            Unauthorized: no Bearer header, or :meth:`verify` refuses the token.
            KeysUnavailable: the JWKS cannot be fetched (503).
        """
        return await self.verify(bearer_token(header))

    async def verify(self, token: str) -> Identity:
        """The identity of a valid token.

        Raises:
            Unauthorized: malformed, wrongly signed, expired, not yet valid, wrong
                issuer or audience, an algorithm not configured, or a bad user claim.
            KeysUnavailable: the JWKS cannot be fetched (503).
        """
        hit = self._cache.get(token)
        if hit is not None:
            if hit.expires <= self._clock():
                del self._cache[token]
                raise Unauthorized("token has expired")
            if hit.jwks_key is None or self.jwks.current(hit.jwks_kid) is hit.jwks_key:
                return hit.identity
            del self._cache[token]  # its key left the key set (or changed): check again
        verified = await self._verify(token)
        if len(self._cache) >= VERIFIED_CACHE_SIZE:
            del self._cache[next(iter(self._cache))]  # the oldest remembered
        self._cache[token] = verified
        return verified.identity

    async def _verify(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:  # every PyJWT refusal, key errors included
            raise Unauthorized(f"invalid token: {exc}") from None
        alg = header.get("alg")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("invalid token: kid must be a string")
        jwks_key = None
        if alg == HMAC_ALGORITHM and self._secret:
            key, algorithms = self._secret, [HMAC_ALGORITHM]
        elif (
            alg in ASYMMETRIC_ALGORITHMS
            and self.jwks is not None
            and (kid is not None or self._public_key is None)
        ):
            jwks_key = await self.jwks.key_for(kid)
            key, algorithms = jwks_key, list(ASYMMETRIC_ALGORITHMS)
        elif alg in self._public_algorithms:
            key, algorithms = self._public_key, list(self._public_algorithms)
        else:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted by this server")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": self._require, "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token is not valid yet (iat or nbf in the future)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("token audience (aud) is not this server's") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token issuer (iss) is not the configured one") from None
        except jwt.PyJWTError as exc:  # every PyJWT refusal, key errors included
            raise Unauthorized(f"invalid token: {exc}") from None
        expires = float(claims["exp"])
        if expires <= self._clock():  # strict: the leeway is for iat/nbf only
            raise Unauthorized("token has expired")
        user_id = validate.user_id_claim(claims.get(self._user_claim), self._user_claim)
        name = None
        if self._name_claim:
            name = validate.user_name_claim(claims.get(self._name_claim), self._name_claim)
        return _Verified(Identity(user_id, name, MappingProxyType(claims)), expires, kid, jwks_key)


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <JWT>`` header.

    Raises:
        Unauthorized: missing, or not the Bearer scheme with a token.
    """
    if not header:
        raise Unauthorized("missing Authorization: Bearer <token> header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def load_public_key(path: Path) -> object:
    """A PEM public key (RSA, EC P-256/384/521, Ed25519, Ed448) from a file.

    Raises:
        SettingsError: unreadable, not a PEM public key, or an unsupported type.
    """
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise SettingsError(f"LIVEHUB_JWT_PUBLIC_KEY={path}: {exc}") from None
    if not _algorithms_of(key):
        raise SettingsError(f"LIVEHUB_JWT_PUBLIC_KEY={path}: unsupported key type")
    return key


def _algorithms_of(key: object) -> tuple[str, ...]:
    """The JWS algorithms a public key can verify (the token's must be one of them)."""
    if isinstance(key, rsa.RSAPublicKey):
        return ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        alg = by_curve.get(key.curve.name)
        return (alg,) if alg else ()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return ("EdDSA",)
    return ()


def mint(
    user: str,
    secret: str,
    ttl_seconds: int = 3600,
    now: float | None = None,
    name: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """An HS256 token for ``user`` (display ``name``) valid ``ttl_seconds`` (local
    testing, dev page); ``extra`` claims (e.g. ``{"roles": ["moderator"]}``) are added."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        **(extra or {}),
        "sub": user,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=HMAC_ALGORITHM)
