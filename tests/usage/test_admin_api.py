"""`GET /api/v1/admin/usage`: the same figures as JSON, per key and in total, over a range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.database import utcnow
from portal.keys.models import ApiKey
from tests.api.conftest import bearer
from tests.conftest import make_key
from tests.usage.conftest import record, write

URL = "/api/v1/admin/usage"


@pytest.fixture
def reporter(user: User) -> tuple[ApiKey, str]:
    """A secret key allowed to read analytics."""
    return make_key(user, "secret", label="Reports", scopes=["analytics:read"])


def get(client: FlaskClient, token: str, **params: str) -> Any:
    """Call the usage endpoint; returns the response."""
    return client.get(URL, headers=bearer(token), query_string=params)


def test_needs_the_analytics_scope(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "secret", scopes=["products:read", "orders:read"])
    response = get(client, token)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "insufficient_scope"
    assert "analytics:read" in error["message"]


def test_publishable_keys_cannot_read_usage(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "publishable")
    assert get(client, token).get_json()["error"]["code"] == "insufficient_scope"


def test_figures_per_key_and_in_total(
    client: FlaskClient, user: User, other_user: User, reporter: tuple[ApiKey, str]
) -> None:
    reports, token = reporter
    storefront = make_key(user, "publishable", label="Storefront")[0]
    stranger = make_key(other_user, "secret", label="Stranger")[0]
    now = utcnow()
    write(
        *[record(reports, now, latency_ms=2.0)] * 2,
        *[record(storefront, now, route="/api/v1/carts", method="POST", latency_ms=8.0)] * 3,
        record(storefront, now, status=403, outcome="origin_denied", latency_ms=8.0),
        *[record(stranger, now)] * 9,
    )
    body = get(client, token).get_json()

    total = body["total"]
    assert (total["total_calls"], total["calls_last_24h"], total["calls"]) == (6, 6, 6)
    assert total["success_rate"] == pytest.approx(5 / 6, abs=1e-4)
    assert total["avg_latency_ms"] == pytest.approx((2 * 2 + 4 * 8) / 6, abs=0.05)
    assert total["outcomes"] == {
        "ok": 5,
        "client_error": 0,
        "server_error": 0,
        "rate_limited": 0,
        "origin_denied": 1,
        "scope_denied": 0,
        "ip_denied": 0,
    }
    assert total["top_endpoints"] == [
        {"method": "POST", "route": "/api/v1/carts", "calls": 3, "errors": 0},
        {"method": "GET", "route": "/api/v1/key", "calls": 3, "errors": 1},
    ]
    per_key = {entry["label"]: entry for entry in body["keys"]}
    assert set(per_key) == {"Reports", "Storefront"}
    assert per_key["Reports"]["usage"]["calls"] == 2
    assert per_key["Reports"]["usage"]["p95_latency_ms"] == pytest.approx(1.9)
    assert per_key["Storefront"]["usage"]["calls"] == 4
    assert per_key["Storefront"]["usage"]["success_rate"] == 0.75
    assert (
        per_key["Storefront"]["last_used_at"]
        == now.replace(second=0, microsecond=0).isoformat() + "Z"
    )
    assert sum(entry["usage"]["calls"] for entry in body["keys"]) == total["calls"]


def test_start_and_end_select_the_hours_counted(
    client: FlaskClient, user: User, reporter: tuple[ApiKey, str]
) -> None:
    reports, token = reporter
    write(
        record(reports, datetime(2026, 11, 1, 23, 59), route="/api/v1/admin/orders"),
        *[record(reports, datetime(2026, 11, 2, 0, 0))] * 2,
        record(reports, datetime(2026, 11, 2, 23, 59, 59)),
        record(reports, datetime(2026, 11, 3, 0, 0), route="/api/v1/admin/customers"),
    )
    body = get(client, token, start="2026-11-02", end="2026-11-03").get_json()
    assert (body["start"], body["end"]) == ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")
    assert body["total"]["calls"] == 3
    assert body["total"]["total_calls"] == 5  # all time
    assert body["total"]["top_endpoints"] == [
        {"method": "GET", "route": "/api/v1/key", "calls": 3, "errors": 0}
    ]
    assert body["keys"][0]["usage"]["calls"] == 3


def test_times_with_an_offset_are_read_as_utc(
    client: FlaskClient, user: User, reporter: tuple[ApiKey, str]
) -> None:
    reports, token = reporter
    write(
        record(reports, datetime(2026, 11, 2, 0, 30)), record(reports, datetime(2026, 11, 2, 1, 30))
    )
    body = get(
        client, token, start="2026-11-02T02:00:00+02:00", end="2026-11-02T01:00:00Z"
    ).get_json()
    assert (body["start"], body["end"]) == ("2026-11-02T00:00:00Z", "2026-11-02T01:00:00Z")
    assert body["total"]["calls"] == 1


def test_start_alone_counts_up_to_now(
    client: FlaskClient, user: User, reporter: tuple[ApiKey, str]
) -> None:
    reports, token = reporter
    now = utcnow()
    write(record(reports, now - timedelta(days=50)), record(reports, now - timedelta(days=2)))
    start = (now - timedelta(days=60)).date().isoformat()
    assert get(client, token, start=start).get_json()["total"]["calls"] == 2
    assert get(client, token).get_json()["total"]["calls"] == 1  # default: 30 days


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-13-01"}, "start"),
        ({"end": "2026-11-02T25:00"}, "end"),
        ({"start": "2026-11-03", "end": "2026-11-02"}, "start"),
        ({"start": "2026-11-02", "end": "2026-11-02"}, "start"),
        ({"start": "2025-01-01", "end": "2026-11-02"}, "start"),
    ],
    ids=["words", "bad-month", "bad-hour", "reversed", "empty-range", "too-long"],
)
def test_bad_ranges_are_invalid_requests(
    client: FlaskClient, reporter: tuple[ApiKey, str], params: dict[str, str], field: str
) -> None:
    response = get(client, reporter[1], **params)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["message"]


def test_a_market_key_sees_only_its_markets_keys(client: FlaskClient, user: User) -> None:
    us = accounts.add_market(user.merchant_id, "US", "United States")
    eu = accounts.add_market(user.merchant_id, "EU", "European Union")
    us_reports, token = make_key(
        user, "secret", label="US reports", market_id=us.id, scopes=["analytics:read"]
    )
    us_shop = make_key(user, "publishable", label="US shop", market_id=us.id)[0]
    eu_shop = make_key(user, "publishable", label="EU shop", market_id=eu.id)[0]
    everywhere = make_key(user, "secret", label="All markets")[0]
    now = utcnow()
    write(
        record(us_shop, now),
        *[record(eu_shop, now)] * 5,
        *[record(everywhere, now)] * 7,
    )
    body = get(client, token).get_json()
    assert [entry["id"] for entry in body["keys"]] == [us_reports.id, us_shop.id]
    assert body["total"]["calls"] == 1
