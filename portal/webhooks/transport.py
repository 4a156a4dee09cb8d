"""One webhook POST, safe against SSRF: the address is resolved and checked, then that very
address is connected to (a name resolving to 127.0.0.1 is refused); no redirects are followed,
every socket operation times out after 10 s and at most 1 KB of the response is read."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 10.0
EXCERPT_BYTES = 1024
# Cloud metadata services answer on these even where they are not link-local.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})


class DeliveryRefused(Exception):
    """The URL may not be delivered to (its address is private, or it is not http/https)."""


@dataclass(frozen=True)
class Response:
    """What one attempt got: status, latency, the first 1 KB of the body, or an error."""

    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer: delivered."""
        return self.status_code is not None and 200 <= self.status_code < 300


def is_public_address(address: str) -> bool:
    """Whether an IP address is on the public internet (not private, loopback, link-local,
    multicast, reserved, unspecified or a metadata service)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in METADATA_ADDRESSES


def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for `host`, refused unless it is public (or allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DeliveryRefused(f"{host} does not resolve: {error.strerror}.") from None
    address = infos[0][4][0]
    if not allow_private and not is_public_address(address):
        raise DeliveryRefused(
            f"{host} resolves to {address}, a private, loopback or link-local address: "
            "deliveries go to public addresses only."
        )
    return address


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address, whatever the host name resolves to later."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        """Connect to the checked address."""
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address; the certificate is checked for the host."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        """Connect to the checked address, then TLS with the URL's host name (SNI)."""
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], allow_private: bool) -> Response:
    """POST the body to the URL once; never raises for network trouble (it is the error)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Response(None, 0, None, "The URL is not an http or https URL.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = resolve(parts.hostname, port, allow_private)
    except DeliveryRefused as error:
        return Response(None, elapsed(), None, str(error))
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, address, port, TIMEOUT_SECONDS)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        excerpt = answer.read(EXCERPT_BYTES).decode("utf-8", "replace")
        status = answer.status
    except (OSError, http.client.HTTPException) as error:
        return Response(None, elapsed(), None, f"{type(error).__name__}: {error}"[:500])
    finally:
        connection.close()
    error_text = None
    if 300 <= status < 400:
        error_text = f"Redirect to {answer.getheader('Location', '?')[:200]} not followed."
    elif not 200 <= status < 300:
        error_text = f"HTTP {status}"
    return Response(status, elapsed(), excerpt, error_text)
