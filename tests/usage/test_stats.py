"""The figures: totals, 24 hours, success rate, latency, p95, top endpoints, hours and days."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from portal.accounts.models import User
from portal.keys.models import ApiKey
from portal.usage import stats
from portal.usage.models import LATENCY_COLUMNS
from tests.conftest import make_key
from tests.usage.conftest import NOW, record, write


def histogram(**buckets: int) -> list[int]:
    """Histogram counts by column name, e.g. histogram(latency_le_10=90)."""
    return [buckets.get(column, 0) for column in LATENCY_COLUMNS]


@pytest.mark.parametrize(
    ("counts", "fraction", "expected"),
    [
        (histogram(latency_le_1=100), 0.95, 0.95),
        (histogram(latency_le_10=90, latency_le_25=10), 0.95, 17.5),
        (histogram(latency_le_10=90, latency_le_25=10), 0.5, 5 + 5 * 50 / 90),
        (histogram(latency_le_5=95, latency_le_100=5), 0.95, 5.0),
        (histogram(latency_le_5=94, latency_le_100=6), 0.95, 50 + 50 * 1 / 6),
        (histogram(latency_le_2=1), 0.95, 1 + 0.95),
        (histogram(latency_le_250=1, latency_slower=99), 0.95, 2500.0),
    ],
)
def test_percentile_from_the_histogram(counts: list[int], fraction: float, expected: float) -> None:
    assert stats.percentile(counts, fraction) == pytest.approx(expected)


def test_percentile_without_calls_is_none() -> None:
    assert stats.percentile(histogram(), 0.95) is None


@pytest.fixture
def key(user: User) -> ApiKey:
    """A secret key of the user's merchant."""
    return make_key(user, "secret", label="Back office")[0]


@pytest.fixture
def history(key: ApiKey) -> None:
    """Calls of `key` at known times before NOW (2026-11-20 10:30)."""
    write(
        # This hour: 2 ok and a client error.
        record(key, NOW - timedelta(minutes=25), latency_ms=4.0),
        record(key, NOW - timedelta(minutes=20), latency_ms=8.0, route="/api/v1/admin/orders"),
        record(key, NOW - timedelta(minutes=5), status=404, outcome="client_error", latency_ms=3.0),
        # The previous hour, one ok call.
        record(key, datetime(2026, 11, 20, 9, 59, 59), latency_ms=20.0),
        # The oldest of the 24 hourly bars (yesterday 11:00): 2 calls, one rate limited.
        record(key, datetime(2026, 11, 19, 11, 0), latency_ms=1.0),
        record(
            key, datetime(2026, 11, 19, 11, 59), status=429, outcome="rate_limited", latency_ms=1.0
        ),
        # 24 hours and 15 minutes ago: the 30 days, not the last 24 hours.
        *(record(key, datetime(2026, 11, 19, 10, 15), latency_ms=2.0) for _ in range(4)),
        # The first of the 30 days.
        *(
            record(key, datetime(2026, 10, 22, 0, 0), route="/api/v1/admin/orders", latency_ms=6.0)
            for _ in range(5)
        ),
        # The day before the 30 days: only in the total.
        *(record(key, datetime(2026, 10, 21, 23, 59), latency_ms=9.0) for _ in range(7)),
    )


@pytest.mark.usefixtures("history")
def test_summary_of_a_key(key: ApiKey) -> None:
    usage = stats.summarize(merchant_id=key.merchant_id, key_id=key.id, now=NOW)

    assert usage.total_calls == 22
    assert usage.calls_24h == 6
    assert usage.window_calls == 15
    assert usage.outcomes == {
        "ok": 13,
        "client_error": 1,
        "server_error": 0,
        "rate_limited": 1,
        "origin_denied": 0,
        "scope_denied": 0,
        "ip_denied": 0,
    }
    assert usage.success_rate == pytest.approx(13 / 15)
    assert usage.avg_latency_ms == pytest.approx((4 + 8 + 3 + 20 + 1 + 1 + 4 * 2 + 5 * 6) / 15)
    # 14 of the 15 calls took at most 10 ms: the 14.25th lies a quarter into (10, 25].
    assert usage.p95_latency_ms == pytest.approx(10 + 15 * 0.25)
    assert usage.top_endpoints == [
        {"method": "GET", "route": "/api/v1/key", "calls": 9, "errors": 2},
        {"method": "GET", "route": "/api/v1/admin/orders", "calls": 6, "errors": 0},
    ]
    assert len(usage.recent) == 22


@pytest.mark.usefixtures("history")
def test_hourly_series_is_the_last_24_hours_summing_to_calls_24h(key: ApiKey) -> None:
    usage = stats.summarize(merchant_id=key.merchant_id, key_id=key.id, now=NOW)

    assert [hour for hour, _ in usage.hourly] == [
        datetime(2026, 11, 19, 11) + timedelta(hours=offset) for offset in range(24)
    ]
    counts = dict(usage.hourly)
    assert counts[datetime(2026, 11, 20, 10)] == 3
    assert counts[datetime(2026, 11, 20, 9)] == 1
    assert counts[datetime(2026, 11, 19, 11)] == 2
    assert sum(counts.values()) == usage.calls_24h == 6


@pytest.mark.usefixtures("history")
def test_daily_series_is_30_days_summing_to_the_window(key: ApiKey) -> None:
    usage = stats.summarize(merchant_id=key.merchant_id, key_id=key.id, now=NOW)

    assert [day for day, _ in usage.daily] == [
        date(2026, 10, 22) + timedelta(days=offset) for offset in range(30)
    ]
    counts = dict(usage.daily)
    assert counts[date(2026, 10, 22)] == 5
    assert counts[date(2026, 11, 19)] == 6
    assert counts[date(2026, 11, 20)] == 4
    assert sum(counts.values()) == usage.window_calls == sum(usage.outcomes.values()) == 15
    assert sum(endpoint["calls"] for endpoint in usage.top_endpoints) == 15


def test_a_key_without_calls(key: ApiKey) -> None:
    usage = stats.summarize(merchant_id=key.merchant_id, key_id=key.id, now=NOW)
    assert (usage.total_calls, usage.calls_24h, usage.window_calls) == (0, 0, 0)
    assert usage.success_rate is usage.avg_latency_ms is usage.p95_latency_ms is None
    assert len(usage.hourly) == 24 and not any(count for _, count in usage.hourly)
    assert len(usage.daily) == 30 and not any(count for _, count in usage.daily)
    assert usage.top_endpoints == [] and usage.recent == []
    assert usage.as_dict()["success_rate"] is None


def test_top_endpoints_by_calls_then_route_at_most_ten(key: ApiKey) -> None:
    calls = []
    for index in range(12):
        calls += [record(key, NOW, route=f"/api/v1/route-{index:02d}")] * (index % 4 + 1)
    calls += [record(key, NOW, method="POST", route="/api/v1/route-03")] * 9
    write(*calls)

    top = stats.summarize(merchant_id=key.merchant_id, key_id=key.id, now=NOW).top_endpoints
    assert [(endpoint["method"], endpoint["route"], endpoint["calls"]) for endpoint in top] == [
        ("POST", "/api/v1/route-03", 9),
        ("GET", "/api/v1/route-03", 4),
        ("GET", "/api/v1/route-07", 4),
        ("GET", "/api/v1/route-11", 4),
        ("GET", "/api/v1/route-02", 3),
        ("GET", "/api/v1/route-06", 3),
        ("GET", "/api/v1/route-10", 3),
        ("GET", "/api/v1/route-01", 2),
        ("GET", "/api/v1/route-05", 2),
        ("GET", "/api/v1/route-09", 2),
    ]


def test_merchant_summary_sums_its_keys_only(user: User, other_user: User, key: ApiKey) -> None:
    second = make_key(user, "publishable")[0]
    stranger = make_key(other_user, "secret")[0]
    write(
        *[record(key, NOW)] * 3,
        *[record(second, NOW, status=403, outcome="origin_denied")] * 2,
        *[record(stranger, NOW)] * 50,
    )
    usage = stats.summarize(merchant_id=user.merchant_id, now=NOW)
    assert (usage.total_calls, usage.calls_24h, usage.window_calls) == (5, 5, 5)
    assert usage.outcomes["origin_denied"] == 2
    assert {call.api_key_id for call in stats.recent_calls(user.merchant_id, None)} == {
        key.id,
        second.id,
    }
    busiest = stats.busiest_keys(user.merchant_id, now=NOW)
    assert [(found.id, calls) for found, calls in busiest] == [(key.id, 3), (second.id, 2)]


def test_busiest_keys_count_the_30_days_only(user: User, key: ApiKey) -> None:
    second = make_key(user, "publishable")[0]
    write(
        *[record(key, datetime(2026, 10, 21, 23))] * 10,  # before the 30 days
        *[record(key, NOW)] * 2,
        *[record(second, datetime(2026, 10, 22, 0))] * 3,
    )
    busiest = stats.busiest_keys(user.merchant_id, now=NOW)
    assert [(found.id, calls) for found, calls in busiest] == [(second.id, 3), (key.id, 2)]


def test_range_counts_the_hours_from_start_to_end(key: ApiKey) -> None:
    write(
        record(key, datetime(2026, 11, 1, 23, 59)),
        record(key, datetime(2026, 11, 2, 0, 0)),
        record(key, datetime(2026, 11, 2, 0, 0), route="/api/v1/admin/orders"),
        record(key, datetime(2026, 11, 2, 23, 59)),
        record(key, datetime(2026, 11, 3, 0, 0), route="/api/v1/admin/customers"),
    )
    usage = stats.summarize(
        merchant_id=key.merchant_id,
        key_id=key.id,
        start=datetime(2026, 11, 2),
        end=datetime(2026, 11, 3),
        now=NOW,
    )
    assert usage.window_calls == 3
    assert usage.total_calls == 5
    assert {endpoint["route"]: endpoint["calls"] for endpoint in usage.top_endpoints} == {
        "/api/v1/key": 2,
        "/api/v1/admin/orders": 1,
    }
