"""`GET /api/v1/key`: the calling key describes itself; no scope needed."""

from __future__ import annotations

from datetime import datetime

from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import User
from tests.api.conftest import bearer, legacy
from tests.conftest import make_key

KEY_URL = "/api/v1/key"


def test_secret_key_describes_itself(client: FlaskClient, user: User) -> None:
    key, token = make_key(
        user,
        "secret",
        scopes=["orders:read", "products:write", "catalog:read"],
        allowed_ip_ranges=["203.0.113.0/24"],
        rate_limit=120,
        expires_at=datetime(2099, 1, 2, 3, 4, 5),
    )
    response = client.get(
        KEY_URL, headers=bearer(token), environ_base={"REMOTE_ADDR": "203.0.113.1"}
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "id": key.id,
        "type": "secret",
        "mode": "live",
        "scopes": ["catalog:read", "products:write", "orders:read"],  # registry order
        "market": None,
        "rate_limit": 120,
        "expires_at": "2099-01-02T03:04:05Z",
        "allowed_ip_ranges": ["203.0.113.0/24"],
    }


def test_publishable_key_describes_itself_with_its_market(client: FlaskClient, user: User) -> None:
    eu = accounts.add_market(user.merchant_id, "EU", "European Union")
    key, token = make_key(
        user,
        "publishable",
        market_id=eu.id,
        allowed_origins=["HTTPS://Shop.Example.com:443", "https://*.example.org"],
    )
    response = client.get(KEY_URL, headers=legacy(token))
    assert response.get_json() == {
        "id": key.id,
        "type": "publishable",
        "mode": "live",
        "scopes": ["catalog:read", "cart:write", "checkout:create", "customer:auth"],
        "market": "EU",
        "rate_limit": 60,
        "expires_at": None,
        "allowed_origins": ["https://shop.example.com", "https://*.example.org"],
    }


def test_a_key_with_no_scopes_can_still_ask_about_itself(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "secret", scopes=[])
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["scopes"] == []


def test_api_responses_ignore_the_portal_session(client, user) -> None:  # noqa: ANN001
    """A signed-in browser's cookie plays no part in an API answer (no Vary: Cookie, no cookie)."""
    from tests.api.conftest import bearer
    from tests.conftest import make_key, sign_in

    _, token = make_key(user, "secret")
    sign_in(client, user.email)
    response = client.get("/api/v1/key", headers=bearer(token))
    assert response.status_code == 200
    assert "Cookie" not in response.vary
    assert "Set-Cookie" not in response.headers
