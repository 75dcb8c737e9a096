"""JwksKeys: an identity provider's signing keys, fetched from its JWKS URL.

One owner task (:meth:`JwksKeys.run`, in the service nursery) fetches the key set at
start, every ``refresh_seconds``, and when a token names a key id it does not know
(a key rotation), at most once per ``min_refresh_seconds`` so a flood of made-up key
ids cannot hammer the provider. The fetch is PyJWT's ``PyJWKClient`` (urllib,
blocking) run in a worker thread with ``trio.to_thread.run_sync``: it happens a few
times an hour, so a thread costs nothing that matters and spares us an async HTTP
client dependency, and the Trio loop never blocks on the provider.

A failed fetch keeps the keys of the last good one (tokens signed with them keep
working); only a successful fetch replaces the set, so a key removed by the provider
stops verifying at the latest ``refresh_seconds`` after its removal.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import NoReturn

import jwt
import trio

from livehub.core.errors import KeysUnavailable, Unauthorized

log = logging.getLogger("livehub.identity.jwks")

# What a provider's JWKS may sign with. Never HS* (a JWKS is public) nor "none".
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
FAILED_RETRY_SECONDS = 5.0  # after a failed fetch, try again this soon (not refresh_seconds)


@dataclass(frozen=True)
class JwksStatistics:
    keys: int  # usable signing keys held now
    fetches: int  # successful fetches
    failures: int  # failed fetches
    healthy: bool  # the last fetch succeeded


class JwksKeys:
    """The signing keys of one JWKS URL, by ``kid``; read by the token verifier.

    Args:
        url: the provider's JWKS document (http or https).
        refresh_seconds: periodic refresh interval.
        min_refresh_seconds: at most one fetch per this interval, whatever asks.
        timeout_seconds: bound on one fetch.
    """

    def __init__(
        self,
        url: str,
        refresh_seconds: float = 300.0,
        min_refresh_seconds: float = 5.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout_seconds)
        self._refresh = refresh_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._raw: dict[str, str] = {}  # kid -> its JWK as JSON: unchanged keys keep identity
        self._loaded = False  # at least one fetch succeeded
        self._healthy = False  # the last fetch succeeded
        self._error = "the key set has not been fetched yet"
        self._last_attempt = -math.inf
        self._fetching = False
        self._wanted = trio.Event()
        self._done = trio.Event()  # set (and replaced) after every fetch attempt
        self._fetches = 0
        self._failures = 0

    def statistics(self) -> JwksStatistics:
        return JwksStatistics(len(self._keys), self._fetches, self._failures, self._healthy)

    def current(self, kid: str | None) -> jwt.PyJWK | None:
        """The key a token with ``kid`` verifies against now, if held (no kid: the
        only key of a one-key set)."""
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            return None
        return self._keys.get(kid)

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        """The key for ``kid``, refreshing the set first when it is unknown (rate
        limited: within ``min_refresh_seconds`` of the last fetch, no new fetch).

        Raises:
            KeysUnavailable: the key set cannot be fetched (never was, or the refresh
                that might have brought this key failed): 503.
            Unauthorized: the provider's current key set has no such key.
        """
        key = self.current(kid)
        if key is not None:
            return key
        if kid is None and len(self._keys) > 1:
            raise Unauthorized("token has no key id (kid) and the key set holds several keys")
        if self._fetching or trio.current_time() - self._last_attempt >= self._min_refresh:
            done = self._done
            if not self._fetching:
                self._wanted.set()  # (a fetch in flight answers this one too)
            with trio.move_on_after(self._timeout + 1.0):
                await done.wait()
            key = self.current(kid)
            if key is not None:
                return key
        if not self._loaded or not self._healthy:
            raise KeysUnavailable(
                f"the identity provider's keys cannot be fetched: {self._error}",
                self._min_refresh,
            )
        shown = kid if kid is None or len(kid) <= 64 else kid[:64] + "..."
        raise Unauthorized(f"token key id {shown!r} is not in the identity provider's key set")

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Fetch now, then periodically and on demand; runs until cancelled. Started
        before the first fetch: a provider that is down must not stop the node."""
        task_status.started()
        while True:
            await self._fetch()
            delay = self._refresh if self._healthy else min(self._refresh, FAILED_RETRY_SECONDS)
            with trio.move_on_after(delay):
                await self._wanted.wait()
            self._wanted = trio.Event()
            await trio.sleep_until(self._last_attempt + self._min_refresh)

    async def _fetch(self) -> None:
        self._last_attempt = trio.current_time()
        self._fetching = True
        try:
            with trio.fail_after(self._timeout + 1.0):
                document = await trio.to_thread.run_sync(
                    self._client.fetch_data, abandon_on_cancel=True
                )
            self._replace(document)
        except (jwt.PyJWTError, trio.TooSlowError, OSError, ValueError) as exc:
            self._failures += 1
            self._healthy = False
            self._error = str(exc) or type(exc).__name__
            log.warning("JWKS fetch from %s failed: %s", self.url, self._error)
        else:
            self._fetches += 1
            self._loaded = self._healthy = True
        finally:
            self._fetching = False
            done, self._done = self._done, trio.Event()
            done.set()

    def _replace(self, document: dict) -> None:
        """Take the usable signing keys of a JWKS document; keep the current ones when
        none is usable (raises ValueError)."""
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ValueError('the JWKS document has no "keys" list')
        fresh: dict[str, jwt.PyJWK] = {}
        raw: dict[str, str] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use") not in (None, "sig"):
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            text = json.dumps(entry, sort_keys=True)
            if self._raw.get(kid) == text:
                fresh[kid], raw[kid] = self._keys[kid], text  # unchanged: same object
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type or curve we cannot use
            if key.algorithm_name in ASYMMETRIC_ALGORITHMS:  # never a symmetric key
                fresh[kid], raw[kid] = key, text
        if not fresh:
            raise ValueError("the JWKS holds no usable asymmetric signing key")
        if fresh.keys() != self._keys.keys():
            log.info("JWKS %s: keys %s", self.url, ", ".join(sorted(fresh)))
        self._keys, self._raw = fresh, raw
