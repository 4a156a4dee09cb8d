"""Behind trusted proxies the gate sees the client's address; nobody else can claim one.

The WSGI-level rules, through the test client (its REMOTE_ADDR plays the immediate peer).
`test_nginx.py` proves the same with a real nginx in front of gunicorn.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import create_app, proxy
from portal.accounts.models import User
from portal.config import ConfigError
from portal.extensions import db
from portal.keys.models import AuditEvent
from tests import conftest
from tests.conftest import make_key

KEY_URL = "/api/v1/key"
PROXY = "10.0.0.5"
CLIENT = "203.0.113.7"
OTHER_CLIENT = "198.51.100.3"


@pytest.fixture
def app_config() -> dict[str, Any]:
    """One proxy (and its whole subnet) trusted in front of the app; a short failure limit."""
    return {
        "FORWARDED_ALLOW_IPS": "10.0.0.0/24, ::1",
        "PROXY_HOPS": "1",
        "API_AUTH_FAILURE_LIMIT": "2/minute",
    }


def _get(
    client: FlaskClient, token: str, peer: str, forwarded_for: str | None = None, **headers: str
) -> Any:
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    headers["Authorization"] = f"Bearer {token}"
    return client.get(KEY_URL, headers=headers, environ_base={"REMOTE_ADDR": peer})


def _error(response: Any) -> dict[str, str]:
    return response.get_json()["error"]


def test_ip_ranges_see_the_client_behind_a_trusted_proxy(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "secret", allowed_ip_ranges=["203.0.113.0/24"])
    assert _get(client, token, PROXY, CLIENT).status_code == 200
    refused = _get(client, token, PROXY, OTHER_CLIENT)
    assert _error(refused)["code"] == "ip_not_allowed"
    assert OTHER_CLIENT in _error(refused)["message"]


def test_an_untrusted_peer_cannot_claim_an_address(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "secret", allowed_ip_ranges=["203.0.113.0/24"])
    spoofed = _get(client, token, OTHER_CLIENT, CLIENT)
    assert _error(spoofed)["code"] == "ip_not_allowed"
    assert OTHER_CLIENT in _error(spoofed)["message"]


def test_what_the_client_sent_before_the_proxy_is_not_believed(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "secret", allowed_ip_ranges=["203.0.113.0/24"])
    # The client sent "X-Forwarded-For: 203.0.113.7"; the proxy appended the real address.
    spoofed = _get(client, token, PROXY, f"{CLIENT}, {OTHER_CLIENT}")
    assert _error(spoofed)["code"] == "ip_not_allowed"
    assert OTHER_CLIENT in _error(spoofed)["message"]


def test_per_ip_limits_count_each_client_behind_the_proxy(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "publishable", rate_limit=1)
    assert _get(client, token, PROXY, CLIENT).status_code == 200
    assert _get(client, token, PROXY, OTHER_CLIENT).status_code == 200
    assert _get(client, token, PROXY, CLIENT).status_code == 429


def test_the_audit_log_records_the_client_behind_the_proxy(client: FlaskClient, user: User) -> None:
    key, token = make_key(user, "secret")
    response = _get(client, token, PROXY, CLIENT, Origin="https://shop.example")
    assert _error(response)["code"] == "secret_key_in_browser"
    event = db.session.scalar(
        select(AuditEvent).where(
            AuditEvent.api_key_id == key.id, AuditEvent.action == "secret_key_in_browser"
        )
    )
    assert event is not None
    assert event.ip == CLIENT


def test_failed_authentications_are_counted_per_client_behind_the_proxy(
    client: FlaskClient,
) -> None:
    bad = "sk_live_" + "x" * 38
    assert [_get(client, bad, PROXY, CLIENT).status_code for _ in range(3)] == [401, 401, 429]
    assert _get(client, bad, PROXY, OTHER_CLIENT).status_code == 401


def _app(database_url: str, **config: Any) -> Flask:
    return create_app(conftest.test_config(database_url, **config))


def _proxy_fix(app: Flask) -> proxy.TrustedProxyFix | None:
    """The trusted-proxy layer in the app's WSGI chain (behind the /healthz layer), if any."""
    layer: Any = app.wsgi_app
    while layer is not None:
        if isinstance(layer, proxy.TrustedProxyFix):
            return layer
        layer = getattr(layer, "app", None)
    return None


def test_without_configuration_the_header_is_ignored(database_url: str) -> None:
    app = _app(database_url)
    assert _proxy_fix(app) is None
    with app.test_request_context(
        environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers={"X-Forwarded-For": CLIENT}
    ):
        from flask import request

        assert request.remote_addr == "127.0.0.1"


def test_any_peer_may_be_trusted_explicitly(database_url: str) -> None:
    app = _app(database_url, FORWARDED_ALLOW_IPS="*", PROXY_HOPS=1)
    middleware = _proxy_fix(app)
    assert middleware is not None
    assert middleware.is_trusted("192.0.2.200")


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1, nginx", "PROXY_HOPS": "1"}, "'nginx'"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.0/33", "PROXY_HOPS": "1"}, "'10.0.0.0/33'"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1", "PROXY_HOPS": "one"}, "PROXY_HOPS"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1", "PROXY_HOPS": "-1"}, "PROXY_HOPS"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1", "PROXY_HOPS": "٣"}, "PROXY_HOPS"),
    ],
)
def test_bad_proxy_settings_stop_the_start(
    database_url: str, config: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        _app(database_url, **config)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1"}, "PROXY_HOPS is 0"),
        ({"PROXY_HOPS": "2"}, "FORWARDED_ALLOW_IPS is empty"),
    ],
)
def test_half_a_proxy_configuration_is_a_warning_and_trusts_nobody(
    database_url: str, config: dict[str, str], says: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app = _app(database_url, **config)
    assert says in caplog.text
    assert _proxy_fix(app) is None
