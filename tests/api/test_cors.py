"""Per-key CORS: preflights without a key, actual requests by the key's allowed origins."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.accounts.models import User
from tests.api.conftest import bearer, legacy
from tests.conftest import make_key

KEY_URL = "/api/v1/key"
ALLOW_HEADERS = "Authorization, X-API-Key, X-Site-ID, Content-Type, X-Customer-Token"


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/key", "GET, HEAD, OPTIONS"),
        ("/api/v1/admin/products", "GET, HEAD, POST, OPTIONS"),
        ("/api/v1/carts", "POST, OPTIONS"),
    ],
)
def test_preflight_needs_no_key_and_sends_exactly_the_cors_headers(
    client: FlaskClient, path: str, methods: str
) -> None:
    response = client.options(
        path,
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.get_data() == b""
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert response.headers["Access-Control-Allow-Methods"] == methods
    assert response.headers["Access-Control-Allow-Headers"] == ALLOW_HEADERS
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "RateLimit-Limit" not in response.headers


def test_preflight_ignores_a_bad_key(client: FlaskClient) -> None:
    response = client.options(
        KEY_URL, headers={"Origin": "https://a.example", "Authorization": "Bearer nonsense"}
    )
    assert response.status_code == 204


ALLOWED = ["https://shop.example.com", "https://*.example.org", "http://localhost:3000"]

# (request Origin header, allowed?) against ALLOWED.
ORIGIN_CASES = {
    "exact": ("https://shop.example.com", True),
    "exact with default port": ("https://shop.example.com:443", True),
    "upper case": ("HTTPS://SHOP.EXAMPLE.COM", True),
    "http instead of https": ("http://shop.example.com", False),
    "other port": ("https://shop.example.com:8443", False),
    "suffix attack": ("https://shop.example.com.evil.net", False),
    "prefix attack": ("https://evilshop.example.com", False),
    "null": ("null", False),
    "garbage": ("not an origin", False),
    "with a path": ("https://shop.example.com/x", False),
    "wildcard subdomain": ("https://a.example.org", True),
    "wildcard deep subdomain": ("https://a.b.example.org", True),
    "wildcard apex": ("https://example.org", False),
    "wildcard other scheme": ("http://a.example.org", False),
    "wildcard suffix attack": ("https://a.example.org.evil.net", False),
    "wildcard lookalike": ("https://aexample.org", False),
    "localhost port": ("http://localhost:3000", True),
    "localhost other port": ("http://localhost:3001", False),
}


@pytest.mark.parametrize(("origin", "allowed"), list(ORIGIN_CASES.values()), ids=list(ORIGIN_CASES))
def test_publishable_key_origins(
    client: FlaskClient, user: User, origin: str, allowed: bool
) -> None:
    _, token = make_key(user, "publishable", allowed_origins=ALLOWED)
    response = client.get(KEY_URL, headers=bearer(token, Origin=origin))
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    if allowed:
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
    else:
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "origin_not_allowed"
        assert not [name for name, _ in response.headers.items() if name.startswith("Access-")]


@pytest.mark.parametrize(
    "origin", ["https://anything.example", "http://localhost:5173", "https://a.b.c.d:8443"]
)
def test_empty_allowed_origins_allow_any_origin(
    client: FlaskClient, publishable_token: str, origin: str
) -> None:
    response = client.get(KEY_URL, headers=legacy(publishable_token, Origin=origin))
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("token_kind", ["publishable with origins", "publishable", "secret"])
def test_requests_without_origin_are_not_affected(
    client: FlaskClient, user: User, token_kind: str
) -> None:
    if token_kind == "secret":
        _, token = make_key(user, "secret")
    else:
        origins = ALLOWED if token_kind.endswith("origins") else []
        _, token = make_key(user, "publishable", allowed_origins=origins)
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.headers["Vary"]


def test_allowed_origin_reads_errors_after_the_origin_check(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "publishable", allowed_origins=ALLOWED)
    response = client.get(
        KEY_URL, headers=bearer(token, Origin="https://shop.example.com", **{"X-Site-ID": "ZZ"})
    )
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"


def test_an_allowed_origin_can_read_its_429(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "publishable", rate_limit=1, allowed_origins=ALLOWED)
    headers = bearer(token, Origin="https://shop.example.com")
    assert client.get(KEY_URL, headers=headers).status_code == 200
    limited = client.get(KEY_URL, headers=headers)
    assert limited.status_code == 429
    assert limited.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    exposed = limited.headers["Access-Control-Expose-Headers"]
    assert "Retry-After" in exposed
    assert "RateLimit-Reset" in exposed


def test_a_refused_origin_gets_no_cors_headers_on_its_429(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "publishable", rate_limit=1, allowed_origins=ALLOWED)
    headers = bearer(token, Origin="https://evil.example")
    statuses = []
    for _ in range(3):
        response = client.get(KEY_URL, headers=headers)
        statuses.append(response.status_code)
        assert not [name for name, _ in response.headers.items() if name.startswith("Access-")]
        assert "Origin" in response.headers["Vary"]
    assert statuses == [403, 429, 429]


@pytest.mark.parametrize(
    "path", ["/api/v1/key", "/api/v1/no-such-route", "/api/v1", "/api/v1/carts"]
)
def test_vary_origin_on_every_api_response(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (401, 404, 405)
    assert "Origin" in response.headers["Vary"]


def test_portal_pages_do_not_vary_on_origin(client: FlaskClient) -> None:
    response = client.get("/auth/login")
    assert "Origin" not in response.headers.get("Vary", "")
