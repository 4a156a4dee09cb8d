"""Allowed IP ranges of secret keys: normalise CIDR input and match client addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

FORMAT_HINT = "Enter an IPv4 or IPv6 address or CIDR range, e.g. 203.0.113.0/24."

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class IpRangeError(ValueError):
    """An IP range the merchant typed is not valid; the message says why."""


def normalize_ip_range(value: str) -> str:
    """Return the canonical CIDR form of an address or range, or raise IpRangeError."""
    text = value.strip() if isinstance(value, str) else ""
    # Zone identifiers name an interface of one host, which a stored range cannot use.
    if not text or "%" in text:
        raise IpRangeError(FORMAT_HINT)
    try:
        return ipaddress.ip_network(text).compressed
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise IpRangeError(FORMAT_HINT) from None
    raise IpRangeError(f'"{text}" has host bits set; did you mean {network.compressed}?')


@lru_cache(maxsize=4096)
def _network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def ip_allowed(ip: str | None, ranges: Sequence[str]) -> bool:
    """True when the client address lies in one of the ranges, or when there are no ranges."""
    if not ranges:
        return True
    if not ip or not isinstance(ip, str):
        return False
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    # A dual-stack server reports IPv4 clients as ::ffff:a.b.c.d; match them as IPv4 too.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    for text in ranges:
        network = _network(text)
        if network is not None and (
            address in network or (mapped is not None and mapped in network)
        ):
            return True
    return False
