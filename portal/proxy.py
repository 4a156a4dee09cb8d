"""Client addresses behind trusted proxies: `X-Forwarded-For`, believed only from those proxies.

`FORWARDED_ALLOW_IPS` lists the proxies (addresses or CIDR ranges, comma-separated; `*` for any
peer, as gunicorn reads the same variable) and `PROXY_HOPS` how many of them stand in front of the
app, each appending to `X-Forwarded-For`. For a request whose immediate peer is a trusted proxy,
Werkzeug's `ProxyFix` takes the client address from the header (the `PROXY_HOPS`-th entry from the
right, the one the proxies wrote, never what the client sent before them) into `REMOTE_ADDR`, so
IP ranges, every per-IP limit, usage and the audit log see the client. From any other peer the
header is ignored: a client cannot claim another address. The scheme (`X-Forwarded-Proto`) is
gunicorn's business, through its own `forwarded_allow_ips`.

With no trusted proxy or no hops the app is not wrapped at all: requests pay nothing for it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import ConfigError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ANY_PEER = "*"


def parse_trusted(value: str | Iterable[str] | None) -> tuple[Network, ...] | None:
    """The trusted proxies' networks; None means any peer (`*`). ConfigError names a bad entry."""
    entries = value.split(",") if isinstance(value, str) else list(value or ())
    networks: list[Network] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if entry == ANY_PEER:
            return None
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                f"FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or CIDR range "
                "(e.g. 10.0.0.0/8,127.0.0.1)."
            ) from None
    return tuple(networks)


def parse_hops(value: str | int | None) -> int:
    """PROXY_HOPS as a count of proxies (0 or more); ConfigError otherwise."""
    text = str(value if value is not None else 0).strip() or "0"
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(f"PROXY_HOPS must be a number of proxies (0 or more), not {text!r}.")
    return int(text)


class TrustedProxyFix:
    """WSGI middleware: `ProxyFix` for requests from a trusted proxy, the plain app otherwise."""

    def __init__(self, app: WSGIApplication, trusted: Sequence[Network] | None, hops: int) -> None:
        self.app = app
        self.trusted = None if trusted is None else tuple(trusted)
        self.fixed = ProxyFix(app, x_for=hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)
        self.is_trusted = lru_cache(maxsize=1024)(self._is_trusted)

    def _is_trusted(self, peer: str | None) -> bool:
        """Whether the immediate peer's address is one of the trusted proxies."""
        if self.trusted is None:
            return True
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        """Serve the request, with the client address from the proxies when they are trusted."""
        if self.is_trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    """Wrap the app in `TrustedProxyFix` when FORWARDED_ALLOW_IPS and PROXY_HOPS ask for it."""
    trusted = parse_trusted(app.config.get("FORWARDED_ALLOW_IPS"))
    hops = parse_hops(app.config.get("PROXY_HOPS"))
    if hops == 0:
        if trusted is None or trusted:
            app.logger.warning(
                "FORWARDED_ALLOW_IPS is set but PROXY_HOPS is 0: X-Forwarded-For is ignored. "
                "Set PROXY_HOPS to the number of proxies in front of the app."
            )
        return
    if trusted is not None and not trusted:
        app.logger.warning(
            "PROXY_HOPS is %s but FORWARDED_ALLOW_IPS is empty: no proxy is trusted, so "
            "X-Forwarded-For is ignored. Set FORWARDED_ALLOW_IPS to the proxies' addresses.",
            hops,
        )
        return
    app.wsgi_app = TrustedProxyFix(app.wsgi_app, trusted, hops)  # type: ignore[method-assign]
