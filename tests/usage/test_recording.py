"""Recording: every API call made with a valid key is counted, off the request path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.usage.models import UsageCall, UsageEndpointDaily, UsageHourly
from portal.usage.recording import outcome_of
from tests.api.conftest import bearer
from tests.conftest import make_key
from tests.factories import PUBLISHABLE_SCOPES, SECRET_SCOPES, add_product
from tests.helpers import count
from tests.usage.conftest import outcome_totals, recent

API = "/api/v1"
SHOP = "https://shop.example"


@pytest.mark.parametrize(
    ("status", "error_code", "outcome"),
    [
        (200, None, "ok"),
        (201, None, "ok"),
        (204, None, "ok"),
        (400, "invalid_request", "client_error"),
        (404, "not_found", "client_error"),
        (409, None, "client_error"),
        (403, "insufficient_scope", "scope_denied"),
        (403, "origin_not_allowed", "origin_denied"),
        (403, "secret_key_in_browser", "origin_denied"),
        (403, "ip_not_allowed", "ip_denied"),
        (429, "rate_limited", "rate_limited"),
        (500, "internal_error", "server_error"),
        (503, None, "server_error"),
    ],
)
def test_outcome_of_each_response(status: int, error_code: str | None, outcome: str) -> None:
    assert outcome_of(status, error_code) == outcome


def test_a_mix_of_calls_is_counted_by_outcome(
    client: FlaskClient, user: User, flush: Callable[[], int]
) -> None:
    product = add_product(user)
    shop_key, shop = make_key(
        user, "publishable", scopes=PUBLISHABLE_SCOPES, allowed_origins=[SHOP]
    )
    for _ in range(3):
        assert client.get(f"{API}/catalog/products", headers=bearer(shop)).status_code == 200
    ok = client.get(f"{API}/catalog/products/{product.id}", headers=bearer(shop, Origin=SHOP))
    assert ok.status_code == 200
    missing = client.get(f"{API}/catalog/products/999999", headers=bearer(shop))
    assert missing.get_json()["error"]["code"] == "not_found"
    denied = client.get(f"{API}/admin/products", headers=bearer(shop))
    assert denied.get_json()["error"]["code"] == "insufficient_scope"
    for origin in ("https://evil.example", "https://shop.example.evil.net"):
        refused = client.get(f"{API}/catalog/products", headers=bearer(shop, Origin=origin))
        assert refused.get_json()["error"]["code"] == "origin_not_allowed"

    assert flush() == 8
    assert outcome_totals(shop_key.id) == {
        "calls": 8,
        "ok": 4,
        "client_error": 1,
        "scope_denied": 1,
        "origin_denied": 2,
    }


def test_secret_key_refusals_are_counted(
    client: FlaskClient, user: User, flush: Callable[[], int]
) -> None:
    key, token = make_key(user, "secret", scopes=SECRET_SCOPES, allowed_ip_ranges=["10.0.0.0/8"])
    inside = {"REMOTE_ADDR": "10.1.2.3"}
    outside = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get(f"{API}/key", headers=bearer(token), environ_base=inside).status_code == 200
    for _ in range(2):
        response = client.get(f"{API}/key", headers=bearer(token), environ_base=outside)
        assert response.get_json()["error"]["code"] == "ip_not_allowed"
    leaked = client.get(
        f"{API}/admin/orders", headers=bearer(token, Origin=SHOP), environ_base=inside
    )
    assert leaked.get_json()["error"]["code"] == "secret_key_in_browser"

    flush()
    assert outcome_totals(key.id) == {"calls": 4, "ok": 1, "ip_denied": 2, "origin_denied": 1}
    assert [call.origin for call in recent(key.id)] == [SHOP, None, None, None]


def test_rate_limited_calls_are_counted(
    client: FlaskClient, user: User, flush: Callable[[], int]
) -> None:
    key, token = make_key(user, "secret", rate_limit=2)
    statuses = [client.get(f"{API}/key", headers=bearer(token)).status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]

    flush()
    assert outcome_totals(key.id) == {"calls": 5, "ok": 2, "rate_limited": 3}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer sk_live_notarealkeynotarealkeynotarealk"},
        {"X-API-Key": "pk_test_00000000000000000000000000000000abcdef"},
    ],
    ids=["missing", "empty", "basic", "malformed", "bad-checksum"],
)
def test_calls_without_a_valid_key_are_not_counted(
    client: FlaskClient, user: User, flush: Callable[[], int], headers: dict[str, str]
) -> None:
    response = client.get(f"{API}/catalog/products", headers=headers)
    assert response.status_code == 401
    assert flush() == 0
    assert count(UsageHourly) == count(UsageCall) == count(UsageEndpointDaily) == 0


def test_calls_of_unknown_revoked_and_expired_keys_are_not_counted(
    client: FlaskClient, user: User, other_user: User, flush: Callable[[], int]
) -> None:
    from portal.accounts import service as accounts
    from portal.keys import service as keys

    revoked, revoked_token = make_key(user, "secret", label="revoked")
    keys.revoke_key(revoked, keys.Actor(name=user.email, user_id=user.id))
    _, inactive_token = make_key(other_user, "secret", label="inactive plan")
    accounts.set_plan(other_user.email, "inactive")
    unknown = make_key(user, "secret")[1][:-6] + "AAAAAA"  # a valid-looking checksum is unlikely

    for token in (revoked_token, inactive_token, unknown):
        assert client.get(f"{API}/key", headers=bearer(token)).status_code == 401
    assert flush() == 0
    assert count(UsageHourly) == 0


def test_endpoints_are_recorded_as_routes_not_raw_paths(
    client: FlaskClient, user: User, flush: Callable[[], int]
) -> None:
    first, second = add_product(user, sku="A-1"), add_product(user, sku="B-2")
    key, token = make_key(user, "secret", scopes=SECRET_SCOPES)
    shop_key, shop = make_key(user, "publishable", scopes=PUBLISHABLE_SCOPES)
    for product in (first, second, first):
        client.get(f"{API}/catalog/products/{product.id}", headers=bearer(shop))
    client.get(f"{API}/admin/products/{first.id}", headers=bearer(token))
    client.delete(f"{API}/admin/products/424242", headers=bearer(token))
    cart = client.post(f"{API}/carts", headers=bearer(shop), json={}).get_json()
    client.get(f"{API}/carts/{cart['id']}", headers=bearer(shop))
    client.get(f"{API}/no/such/endpoint", headers=bearer(shop))  # unrouted: never reaches the gate

    flush()
    endpoints = {
        (row.api_key_id, row.method, row.route): (row.calls, row.errors)
        for row in UsageEndpointDaily.query.all()
    }
    assert endpoints == {
        (shop_key.id, "GET", "/api/v1/catalog/products/{product_id}"): (3, 0),
        (shop_key.id, "POST", "/api/v1/carts"): (1, 0),
        (shop_key.id, "GET", "/api/v1/carts/{cart_id}"): (1, 0),
        (key.id, "GET", "/api/v1/admin/products/{product_id}"): (1, 0),
        (key.id, "DELETE", "/api/v1/admin/products/{product_id}"): (1, 1),
    }
    assert {call.route for call in UsageCall.query.all()} == {
        "/api/v1/catalog/products/{product_id}",
        "/api/v1/carts",
        "/api/v1/carts/{cart_id}",
        "/api/v1/admin/products/{product_id}",
    }


def test_recent_calls_keep_method_status_origin_and_outcome(
    client: FlaskClient, user: User, flush: Callable[[], int]
) -> None:
    key, token = make_key(user, "publishable", scopes=PUBLISHABLE_SCOPES, allowed_origins=[SHOP])
    client.get(f"{API}/catalog/products", headers=bearer(token, Origin=SHOP))
    client.post(f"{API}/carts", headers=bearer(token), json={"items": "nope"})
    client.get(f"{API}/catalog/products", headers=bearer(token, Origin="https://evil.example"))

    flush()
    calls = [
        (call.method, call.route, call.status, call.origin, call.outcome) for call in recent(key.id)
    ]
    assert calls == [
        ("GET", "/api/v1/catalog/products", 403, "https://evil.example", "origin_denied"),
        ("POST", "/api/v1/carts", 400, None, "client_error"),
        ("GET", "/api/v1/catalog/products", 200, SHOP, "ok"),
    ]
    assert all(
        call.latency_ms >= 0 and call.merchant_id == user.merchant_id for call in recent(key.id)
    )


def test_nothing_is_written_inside_api_requests(
    client: FlaskClient,
    user: User,
    flush: Callable[[], int],
    sql_statements: Callable[[], Any],
) -> None:
    product = add_product(user)
    key, token = make_key(user, "publishable", scopes=["catalog:read"], rate_limit=3)
    with sql_statements() as statements:
        responses = [
            client.get(f"{API}/catalog/products/{product.id}", headers=bearer(token)),
            client.get(f"{API}/catalog/products/999999", headers=bearer(token)),
            client.get(f"{API}/admin/orders", headers=bearer(token)),
            client.get(f"{API}/catalog/products", headers=bearer(token)),
        ]
    assert [response.status_code for response in responses] == [200, 404, 403, 429]
    writes = [
        statement
        for statement in statements
        if statement.lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}
    ]
    assert writes == []
    assert count(UsageHourly) == 0

    with sql_statements() as statements:
        assert flush() == 4
    written = " ".join(statements).lower()
    for table in ("usage_hourly", "usage_endpoint_daily", "usage_calls", "api_keys"):
        assert table in written
    assert outcome_totals(key.id) == {
        "calls": 4,
        "ok": 1,
        "client_error": 1,
        "scope_denied": 1,
        "rate_limited": 1,
    }


def test_legacy_header_calls_are_counted_too(
    client: FlaskClient, user: User, flush: Callable[[], int]
) -> None:
    key, token = make_key(user, "secret")
    assert client.get(f"{API}/key", headers={"X-API-Key": token}).status_code == 200
    flush()
    assert outcome_totals(key.id) == {"calls": 1, "ok": 1}


def test_each_call_records_its_error_code_client_ip_and_request_id(
    client: FlaskClient, user: User, flush: Callable[[], int]
) -> None:
    key, token = make_key(user, "secret", scopes=["orders:read"])

    ok = client.get(
        "/api/v1/key", headers=bearer(token), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    refused = client.get(
        "/api/v1/admin/customers",
        headers=bearer(token),
        environ_base={"REMOTE_ADDR": "198.51.100.8"},
    )
    flush()

    newest, oldest = recent(key.id)
    assert (oldest.error_code, oldest.client_ip) == (None, "198.51.100.7")
    assert (newest.error_code, newest.client_ip) == ("insufficient_scope", "198.51.100.8")
    assert oldest.request_id == ok.headers["X-Request-Id"]
    assert newest.request_id == refused.headers["X-Request-Id"]
    assert oldest.request_id.startswith("req_") and oldest.request_id != newest.request_id
