"""Allowed origins: normalise what merchants type, parse Origin headers, and match them."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

DEFAULT_PORTS = {"http": 80, "https": 443}
FORMAT_HINT = (
    "Use scheme://host[:port] with http or https, and no path (e.g. https://shop.example.com)."
)

_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_DIGITS = frozenset("0123456789")
_MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63
_WILDCARD_MARK = "://*."
_SUBDOMAIN_CHARS = _LABEL_CHARS | {"."}


class OriginError(ValueError):
    """An allowed origin the merchant typed is not a valid origin; the message says why."""


def _fail(reason: str, *, hint: bool = False) -> OriginError:
    return OriginError(f"{reason} {FORMAT_HINT}" if hint else reason)


def _normalize_port(scheme: str, port_text: str) -> str:
    # isdigit() alone would accept non-ASCII digits such as "²".
    if not port_text or len(port_text) > 5 or not _DIGITS.issuperset(port_text):
        raise _fail("The port must be a number from 1 to 65535.")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _fail("The port must be a number from 1 to 65535.")
    return "" if port == DEFAULT_PORTS[scheme] else str(port)


def _normalize_ipv6(host: str) -> str:
    if "%" in host:
        raise _fail("IPv6 zone identifiers are not allowed.")
    try:
        return f"[{ipaddress.IPv6Address(host).compressed}]"
    except ValueError:
        raise _fail(f'"[{host}]" is not a valid IPv6 address.') from None


def _to_ascii(host: str) -> str:
    if host.isascii():
        return host.lower()
    try:
        # The stdlib codec applies nameprep (lower-casing included) and punycode.
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _fail(f'"{host}" is not a valid host name.') from None


def _valid_ace_label(label: str) -> bool:
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError, OverflowError):
        return False
    return not decoded.isascii()


def _normalize_hostname(host: str, wildcard: bool) -> str:
    if not host:
        raise _fail("The host is missing.", hint=True)
    if "*" in host:
        raise _fail('A wildcard must be the whole leftmost label, as in "https://*.example.com".')
    host = _to_ascii(host)
    labels = host.split(".")
    if all(label and _DIGITS.issuperset(label) for label in labels):
        if wildcard:
            raise _fail("A wildcard needs a domain name, not an IP address.")
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise _fail(f'"{host}" is not a valid IPv4 address.') from None
    if len(host) > _MAX_HOST_LENGTH:
        raise _fail("The host name is longer than 253 characters.")
    for label in labels:
        if (
            not 1 <= len(label) <= _MAX_LABEL_LENGTH
            or not _LABEL_CHARS.issuperset(label)
            or label[0] == "-"
            or label[-1] == "-"
            or (label.startswith("xn--") and not _valid_ace_label(label))
        ):
            raise _fail(f'"{host}" is not a valid host name.')
    if _DIGITS.issuperset(labels[-1]):
        # Browsers read a host ending in a numeric label as an IPv4 address.
        raise _fail(f'"{host}" is not a valid host name.')
    if wildcard and len(labels) < 2:
        raise _fail('A wildcard needs a domain of at least two labels, as in "*.example.com".')
    return host


def normalize_origin(value: str) -> str:
    """Return the canonical form of an allowed origin, or raise OriginError explaining why not."""
    if not isinstance(value, str):
        raise _fail("Enter an origin.", hint=True)
    text = value.strip()
    if not text:
        raise _fail("Enter an origin.", hint=True)
    scheme, separator, rest = text.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in DEFAULT_PORTS:
        raise _fail("The origin must start with http:// or https://.", hint=True)
    if rest.endswith("/"):
        rest = rest[:-1]
    if "@" in rest:
        raise _fail("User names and passwords are not part of an origin.", hint=True)
    for mark, what in (("/", "a path"), ("?", "a query"), ("#", "a fragment"), ("\\", "a path")):
        if mark in rest:
            raise _fail(f"Remove {what}: an origin ends after the host and port.", hint=True)

    port_text = None
    if rest.startswith("["):
        address, bracket, after = rest[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise _fail("Put an IPv6 address in brackets, as in http://[::1]:8080.")
        host = _normalize_ipv6(address)
        if after:
            port_text = after[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            host, port_text = port_text, None
        if ":" in host:
            raise _fail("Put an IPv6 address in brackets, as in http://[::1]:8080.")
        if host.startswith("*."):
            host = "*." + _normalize_hostname(host[2:], wildcard=True)
        else:
            host = _normalize_hostname(host, wildcard=False)
    port = "" if port_text is None else _normalize_port(scheme, port_text)
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def is_wildcard(pattern: str) -> bool:
    """True when a normalised pattern is a wildcard such as "https://*.example.com"."""
    return _WILDCARD_MARK in pattern


def parse_request_origin(header: str | None) -> str | None:
    """Return the normalised Origin header, or None for a missing, null or malformed one."""
    if not header or not isinstance(header, str) or header == "null":
        return None
    try:
        origin = normalize_origin(header)
    except OriginError:
        return None
    return None if is_wildcard(origin) else origin


def _matches_wildcard(origin: str, pattern: str) -> bool:
    scheme_end = pattern.index(_WILDCARD_MARK) + 3
    scheme_part, suffix = pattern[:scheme_end], pattern[scheme_end + 1 :]
    if not (origin.startswith(scheme_part) and origin.endswith(suffix)):
        return False
    # The suffix holds the "."-led domain and the port, so what stands in for "*" must be
    # one or more host labels and nothing else (no port, path or userinfo smuggled in).
    subdomain = origin[len(scheme_part) : len(origin) - len(suffix)]
    return bool(subdomain) and _SUBDOMAIN_CHARS.issuperset(subdomain)


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    """True when the parsed request origin matches one of the normalised allowed patterns."""
    if not allowed:
        return True
    if origin is None or is_wildcard(origin):
        return False
    for pattern in allowed:
        if origin == pattern:
            return True
        if is_wildcard(pattern) and _matches_wildcard(origin, pattern):
            return True
    return False
