"""PURE: which client a request comes from, for per-client limits.

The client is the peer address of the connection, unless the peer is a proxy we
trust (``LIVEHUB_TRUSTED_PROXIES``: addresses and CIDRs): then it is the nearest
address in ``X-Forwarded-For`` that is not itself a trusted proxy, read from the
right, since every proxy appends the address it saw and only the entries our own
proxies added can be believed. A client that is not behind a trusted proxy cannot
pick its own key by sending ``X-Forwarded-For``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"  # no peer address (a Unix socket): all such clients share one key


@functools.lru_cache(maxsize=8)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1 ::1"`` -> networks (a bare address is a /32 or /128).

    Raises:
        ValueError: an entry is not an address or a network.
    """
    entries = [e for e in spec.replace(",", " ").split() if e]
    try:
        return tuple(ipaddress.ip_network(e, strict=False) for e in entries)
    except ValueError:
        raise ValueError(f"not an address or CIDR in {spec!r}") from None


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]
) -> str:
    """The client's address (normalised text) given the peer's and the
    ``X-Forwarded-For`` header values, in order."""
    peer_ip = _ip(peer)
    if peer_ip is None:
        return peer or UNKNOWN
    if not _trusted(peer_ip, trusted):
        return str(peer_ip)
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    nearest = peer_ip
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            break  # garbage in the header: believe nothing left of it
        nearest = ip
        if not _trusted(ip, trusted):
            break
    return str(nearest)


def from_scope(scope: dict, trusted_spec: str) -> str:
    """The client of an ASGI HTTP or WebSocket ``scope``; ``trusted_spec`` is
    ``LIVEHUB_TRUSTED_PROXIES`` (parsed once and cached)."""
    trusted = parse_networks(trusted_spec) if trusted_spec else ()
    client = scope.get("client")
    peer = client[0] if client else None
    forwarded = ()
    if trusted:
        forwarded = [
            v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"
        ]
    return client_address(peer, forwarded, trusted)


def _ip(text: str | None):
    if not text:
        return None
    if text.startswith("[") and "]" in text:  # "[::1]:1234"
        text = text[1 : text.index("]")]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(ip, trusted: tuple[Network, ...]) -> bool:
    if getattr(ip, "ipv4_mapped", None) is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in trusted)
