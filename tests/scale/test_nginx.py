"""A real nginx in front of gunicorn: the gate sees each client's address, and only nginx's word.

Clients bind their sockets to other loopback addresses (127.0.0.2, 127.0.0.3, ...: all of 127/8
is loopback), so nginx (which connects to gunicorn from 127.0.0.1) has a client address
different from its own to forward.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import AuditEvent
from tests.conftest import make_key
from tests.scale.conftest import Nginx, Server, ServerFactory, wait_until

KEY_URL = "/api/v1/key"


@dataclass(frozen=True)
class Answer:
    """A response's status, headers (lower-case names) and JSON body."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error(self) -> dict[str, str]:
        """The JSON error object."""
        return self.body["error"]


def call(port: int, token: str, source: str, **headers: str) -> Answer:
    """GET /api/v1/key on 127.0.0.1:port from the loopback address `source`."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request("GET", KEY_URL, headers={"Authorization": f"Bearer {token}", **headers})
        response = connection.getresponse()
        body = json.loads(response.read() or b"null")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


@pytest.fixture
def behind_nginx(serve: ServerFactory, nginx: Nginx) -> tuple[Server, Nginx]:
    """gunicorn trusting only 127.0.0.1 (nginx) for one hop, and nginx in front of it."""
    server = serve(workers=1, FORWARDED_ALLOW_IPS="127.0.0.1", PROXY_HOPS="1")
    nginx.start(upstream=server.port)
    return server, nginx


def test_ip_ranges_see_the_client_through_nginx(
    user: User, behind_nginx: tuple[Server, Nginx]
) -> None:
    _, proxy = behind_nginx
    _, token = make_key(user, "secret", allowed_ip_ranges=["127.0.0.2/32"])
    assert call(proxy.port, token, "127.0.0.2").status == 200
    refused = call(proxy.port, token, "127.0.0.3")
    assert refused.status == 403
    assert refused.error["code"] == "ip_not_allowed"
    assert "127.0.0.3" in refused.error["message"]
    # Both went through nginx (it writes the line once the response is sent: wait for it).
    wait_until(
        lambda: "127.0.0.2 " in proxy.access_log() and "127.0.0.3 " in proxy.access_log(),
        10,
        "nginx's access log",
    )
    assert token not in proxy.access_log()


def test_a_spoofed_forwarded_for_is_ignored(user: User, behind_nginx: tuple[Server, Nginx]) -> None:
    server, proxy = behind_nginx
    _, token = make_key(user, "secret", allowed_ip_ranges=["203.0.113.0/24"])
    spoof = {"X-Forwarded-For": "203.0.113.7"}
    # Straight to gunicorn from an address that is not a trusted proxy: the header is ignored.
    direct = call(server.port, token, "127.0.0.2", **spoof)
    assert direct.error["code"] == "ip_not_allowed"
    assert "127.0.0.2" in direct.error["message"]
    # Through nginx, which appends the real address: only that one is believed.
    through = call(proxy.port, token, "127.0.0.2", **spoof)
    assert through.error["code"] == "ip_not_allowed"
    assert "127.0.0.2" in through.error["message"]


def test_publishable_limits_are_per_client_through_nginx(
    user: User, behind_nginx: tuple[Server, Nginx]
) -> None:
    _, proxy = behind_nginx
    _, token = make_key(user, "publishable", rate_limit=1)
    first = call(proxy.port, token, "127.0.0.2")
    assert (first.status, first.headers["ratelimit-remaining"]) == (200, "0")
    assert call(proxy.port, token, "127.0.0.3").status == 200  # another shopper, its own allowance
    again = call(proxy.port, token, "127.0.0.2")
    assert again.status == 429
    assert 0 < int(again.headers["retry-after"]) <= 60


def test_the_audit_log_records_the_client_through_nginx(
    user: User, behind_nginx: tuple[Server, Nginx]
) -> None:
    _, proxy = behind_nginx
    key, token = make_key(user, "secret")
    refused = call(proxy.port, token, "127.0.0.4", Origin="https://shop.example.com")
    assert refused.error["code"] == "secret_key_in_browser"
    db.session.expire_all()
    ips = db.session.scalars(
        select(AuditEvent.ip).where(
            AuditEvent.api_key_id == key.id, AuditEvent.action == "secret_key_in_browser"
        )
    ).all()
    assert ips == ["127.0.0.4"]
