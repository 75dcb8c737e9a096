"""PURE: HMAC-SHA256 signatures of the requests livehub sends to integrators (the
publish proxy, webhooks), and their verification.

The header is ``X-Livehub-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256(secret, ``b"<t>." + body``): the timestamp is signed with the body, so a
receiver that refuses old timestamps refuses replays. docs/OPERATIONS.md shows how to
verify it.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-livehub-signature"
DEFAULT_TOLERANCE_SECONDS = 300  # a receiver refuses signatures older (or newer) than this


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Livehub-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header value.

    Raises:
        ValueError: no timestamp, or no v1 signature.
    """
    timestamp = None
    sigs = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            sigs.append(value)
    if timestamp is None or not sigs:
        raise ValueError("not a livehub signature header")
    return timestamp, sigs


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` within ``tolerance_seconds``
    of ``now`` (what an integrator's endpoint checks; livehub's tests check it too)."""
    try:
        timestamp, sigs = parse(header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, body, timestamp)
    return any(hmac.compare_digest(expected, s) for s in sigs)
