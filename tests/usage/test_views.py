"""The usage panel of a key, the merchant overview, their CSV exports, and who may see them."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import ApiKey
from portal.usage.recorder import CallRecord
from tests.conftest import make_key, sign_in
from tests.helpers import HX, assert_fragment, assert_full_page, html, text
from tests.usage.conftest import NOW, record, write


@pytest.fixture
def frozen(freeze: Callable[[datetime], None]) -> datetime:
    """The figures' clock stopped at NOW (2026-11-20 10:30)."""
    freeze(NOW)
    return NOW


@pytest.fixture
def key(user: User) -> ApiKey:
    """A secret key of the signed-in merchant."""
    return make_key(user, "secret", label="Back office")[0]


@pytest.fixture
def calls(key: ApiKey) -> None:
    """Known calls of `key`: this hour, 3 hours ago, yesterday and 10 days ago."""
    write(
        *[record(key, NOW - timedelta(minutes=10), latency_ms=4.0)] * 4,
        record(
            key,
            NOW - timedelta(minutes=5),
            method="POST",
            route="/api/v1/admin/products",
            status=403,
            outcome="scope_denied",
            latency_ms=12.0,
        ),
        *[record(key, NOW - timedelta(hours=3), latency_ms=2.0)] * 2,
        *[record(key, datetime(2026, 11, 19, 12, 0), latency_ms=30.0)] * 7,
        *[record(key, datetime(2026, 11, 10, 8, 0), status=429, outcome="rate_limited")] * 3,
    )


def bars(response: TestResponse, chart_id: str) -> list[tuple[str, int]]:
    """The (label, count) of each bar of a chart."""
    chart = html(response).find(id=chart_id)
    assert chart is not None, f"no chart {chart_id}"
    return [(bar["data-label"], int(bar["data-count"])) for bar in chart.select("rect.bar")]


def figure(response: TestResponse, name: str) -> str:
    """The text of one figure of the panel."""
    return text(html(response).find(attrs={"data-figure": name}))


@pytest.mark.usefixtures("calls", "frozen")
def test_key_page_shows_the_figures(signed_in: FlaskClient, key: ApiKey) -> None:
    page = signed_in.get(f"/settings/api-keys/{key.id}")
    assert page.status_code == 200
    panel = html(page).find(id="usage-panel")
    assert panel is not None
    assert figure(page, "total") == "17"
    assert figure(page, "calls-24h") == "14"
    assert figure(page, "success-rate") == f"{100 * 13 / 17:.1f}%"
    assert figure(page, "avg-latency") == f"{(16 + 12 + 4 + 210 + 15) / 17:.1f} ms"
    outcomes = {
        row["data-outcome"]: text(row.find_all("td")[1]) for row in panel.select("tr[data-outcome]")
    }
    assert outcomes["ok"] == "13"
    assert outcomes["scope_denied"] == "1"
    assert outcomes["rate_limited"] == "3"
    endpoints = [text(row) for row in panel.select("table")[0].select("tbody tr")]
    assert endpoints == ["GET /api/v1/key 16 3", "POST /api/v1/admin/products 1 1"]


@pytest.mark.usefixtures("calls", "frozen")
def test_chart_bars_match_the_counts(signed_in: FlaskClient, key: ApiKey) -> None:
    page = signed_in.get(f"/settings/api-keys/{key.id}")

    hourly = bars(page, "chart-hourly")
    assert len(hourly) == 24
    assert hourly[0] == ("11:00", 0)  # yesterday 11:00 is the oldest hour shown
    assert hourly[1] == ("12:00", 7)
    expected_hours = {"12:00": 7, "07:00": 2, "10:00": 5}
    assert {label: count for label, count in hourly if count} == expected_hours
    assert hourly[-1] == ("10:00", 5)

    daily = bars(page, "chart-daily")
    assert len(daily) == 30
    assert daily[0][0] == "Oct 22" and daily[-1][0] == "Nov 20"
    assert {label: count for label, count in daily if count} == {
        "Nov 10": 3,
        "Nov 19": 7,
        "Nov 20": 7,
    }


@pytest.mark.usefixtures("calls", "frozen")
def test_bar_heights_are_proportional(signed_in: FlaskClient, key: ApiKey) -> None:
    chart = html(signed_in.get(f"/settings/api-keys/{key.id}")).find(id="chart-hourly")
    heights = {int(bar["data-count"]): float(bar["height"]) for bar in chart.select("rect.bar")}
    assert heights[0] == 0
    assert heights[5] == pytest.approx(heights[7] * 5 / 7, abs=0.1)
    assert "14 calls" in text(chart.find("title"))


def recent_rows(panel) -> list[list[str]]:  # noqa: ANN001
    """The cells of the recent calls table."""
    table = panel.find("table", class_="recent-calls")
    return [[text(cell) for cell in row.find_all("td")] for row in table.select("tbody tr")]


@pytest.mark.usefixtures("frozen")
def test_recent_calls_are_listed_newest_first(signed_in: FlaskClient, key: ApiKey) -> None:
    write(
        record(key, NOW - timedelta(minutes=2), route="/api/v1/admin/orders"),
        _with(
            record(
                key,
                NOW - timedelta(minutes=1),
                method="DELETE",
                route="/api/v1/admin/products/{product_id}",
                status=403,
                origin="https://evil.example",
                outcome="origin_denied",
                latency_ms=1.25,
            ),
            error_code="secret_key_in_browser",
            client_ip="198.51.100.7",
            request_id="req_0123456789abcdef",
        ),
    )
    panel = html(signed_in.get(f"/settings/api-keys/{key.id}")).find(id="usage-panel")
    headers = [text(th) for th in panel.find("table", class_="recent-calls").select("thead th")]
    assert headers == [
        "When", "Request", "Status", "Outcome", "Error code", "Latency", "Origin", "Client IP",
        "Request ID",
    ]  # fmt: skip
    assert [row[1:] for row in recent_rows(panel)] == [
        [
            "DELETE /api/v1/admin/products/{product_id}",
            "403",
            "✕ Origin denied",
            "secret_key_in_browser",
            "1.2 ms",
            "https://evil.example",
            "198.51.100.7",
            "req_0123456789abcdef",
        ],
        ["GET /api/v1/admin/orders", "200", "✓ OK", "—", "5.0 ms", "—", "—", "—"],
    ]


def _with(call: CallRecord, **fields: object) -> CallRecord:
    """A call record with some fields changed."""
    return dataclasses.replace(call, **fields)


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_recent_calls_filter_by_outcome(signed_in: FlaskClient, key: ApiKey, htmx: bool) -> None:
    write(
        record(key, NOW - timedelta(minutes=3), route="/api/v1/catalog/products"),
        record(key, NOW - timedelta(minutes=2), status=429, outcome="rate_limited"),
        record(key, NOW - timedelta(minutes=1), status=403, outcome="scope_denied"),
    )
    url = f"/settings/api-keys/{key.id}/usage?outcome=rate_limited"

    response = signed_in.get(url, headers=HX if htmx else {})

    soup = assert_fragment(response, "usage-panel") if htmx else assert_full_page(response)
    panel = soup.find(id="usage-panel")
    assert [row[2] for row in recent_rows(panel)] == ["429"]
    assert panel["hx-get"] == url  # polling keeps the filter
    form = panel.find("form", attrs={"aria-label": "Filter recent calls"})
    assert form["method"] == "get" and form["hx-target"] == "#usage-panel"
    assert form.find("option", selected=True)["value"] == "rate_limited"
    everything = html(signed_in.get(f"/settings/api-keys/{key.id}/usage?outcome=bogus"))
    assert len(recent_rows(everything.find(id="usage-panel"))) == 3
    nothing = html(signed_in.get(f"/settings/api-keys/{key.id}/usage?outcome=ip_denied"))
    assert "No recent calls with this outcome" in text(nothing.find(id="usage-panel"))


@pytest.mark.usefixtures("calls", "frozen")
def test_charts_draw_errors_hatched_with_a_legend_and_three_ticks(
    signed_in: FlaskClient, key: ApiKey
) -> None:
    chart = html(signed_in.get(f"/settings/api-keys/{key.id}")).find(id="chart-hourly")

    errors = {bar["data-label"]: int(bar["data-errors"]) for bar in chart.select("rect.bar")}
    assert {label: n for label, n in errors.items() if n} == {"10:00": 1}
    [hatched] = chart.select("rect.bar-errors")
    assert hatched["fill"] == "url(#chart-hourly-hatch)"
    assert chart.find("pattern", id="chart-hourly-hatch") is not None
    assert "Successful" in text(chart.find("figcaption")) and "Errors" in text(
        chart.find("figcaption")
    )
    assert "1 error" in text(chart.find("rect", attrs={"data-label": "10:00"}).find("title"))
    y_ticks = [text(t) for t in chart.select("text.tick[text-anchor=end]")]
    assert y_ticks == ["0", "3.5", "7"]  # the peak bar has 7 calls: a middle tick at half


def test_a_key_without_calls_says_so(signed_in: FlaskClient, key: ApiKey) -> None:
    page = signed_in.get(f"/settings/api-keys/{key.id}")
    panel = html(page).find(id="usage-panel")
    assert figure(page, "total") == "0"
    assert figure(page, "success-rate") == "—"
    assert "No calls yet" in text(panel)
    assert all(count == 0 for _, count in bars(page, "chart-daily"))


@pytest.mark.usefixtures("calls", "frozen")
def test_usage_partial_for_htmx_polling(signed_in: FlaskClient, key: ApiKey) -> None:
    url = f"/settings/api-keys/{key.id}/usage"
    fragment = signed_in.get(url, headers=HX)
    assert fragment.status_code == 200
    soup = assert_fragment(fragment, "usage-panel")
    panel = soup.find(id="usage-panel")
    assert panel["hx-get"] == url
    assert panel["hx-trigger"].startswith("every ")
    assert panel["hx-swap"] == "outerHTML"
    assert figure(fragment, "total") == "17"
    assert bars(fragment, "chart-hourly")[-1] == ("10:00", 5)


@pytest.mark.usefixtures("calls", "frozen")
def test_usage_url_without_htmx_is_a_whole_page(signed_in: FlaskClient, key: ApiKey) -> None:
    page = signed_in.get(f"/settings/api-keys/{key.id}/usage")
    soup = assert_full_page(page)
    assert "Usage of Back office" in text(soup.find("h1"))
    assert soup.find(id="usage-panel") is not None
    assert figure(page, "total") == "17"


def test_the_panel_picks_up_new_calls(signed_in: FlaskClient, key: ApiKey) -> None:
    url = f"/settings/api-keys/{key.id}/usage"
    assert figure(signed_in.get(url, headers=HX), "total") == "0"
    write(record(key, utcnow()), record(key, utcnow()))
    assert figure(signed_in.get(url, headers=HX), "calls-24h") == "2"


def test_overview_sums_every_key_and_lists_the_busiest(
    signed_in: FlaskClient, user: User, other_user: User, frozen: datetime
) -> None:
    quiet = make_key(user, "secret", label="Quiet")[0]
    busy = make_key(user, "publishable", label="Storefront")[0]
    idle = make_key(user, "secret", label="Idle")[0]
    stranger = make_key(other_user, "secret", label="Stranger")[0]
    write(
        *[record(quiet, NOW)] * 2,
        *[record(busy, NOW - timedelta(hours=2))] * 5,
        *[record(busy, NOW, status=403, outcome="origin_denied")] * 1,
        *[record(stranger, NOW)] * 100,
    )
    page = signed_in.get("/settings/usage")
    soup = assert_full_page(page)
    assert figure(page, "total") == "8"
    assert figure(page, "calls-24h") == "8"
    heading = next(h2 for h2 in soup.find_all("h2") if text(h2).startswith("Busiest keys"))
    busiest = [text(row.find("a")) for row in heading.find_next("table").select("tbody tr")]
    assert busiest == ["Storefront", "Quiet"]
    assert "Stranger" not in text(soup) and "Idle" not in busiest
    assert idle.id  # created, never called
    assert {label: count for label, count in bars(page, "chart-hourly") if count} == {
        "08:00": 5,
        "10:00": 3,
    }


def test_overview_partial_for_htmx(signed_in: FlaskClient) -> None:
    response = signed_in.get("/settings/usage", headers=HX)
    assert response.status_code == 200
    assert_fragment(response)
    assert figure(response, "total") == "0"


def _expiry(days: float) -> datetime:
    return utcnow() + timedelta(days=days)


def test_keys_expiring_within_7_days_are_flagged(signed_in: FlaskClient, user: User) -> None:
    soon = make_key(user, "secret", label="Soon", expires_at=_expiry(6.5))[0]
    sooner = make_key(user, "publishable", label="Sooner", expires_at=_expiry(1))[0]
    make_key(user, "secret", label="Later", expires_at=_expiry(8))
    make_key(user, "secret", label="Never")
    gone = make_key(user, "secret", label="Revoked soon", expires_at=_expiry(2))[0]
    keys.revoke_key(gone, keys.Actor(name=user.email, user_id=user.id))
    expired = make_key(user, "secret", label="Expired", expires_at=_expiry(1))[0]
    expired.expires_at = utcnow() - timedelta(hours=1)
    db.session.commit()

    overview = html(signed_in.get("/settings/usage"))
    warning = overview.find(class_="warning")
    assert warning is not None
    assert "2 keys expire within 7 days" in text(warning)
    assert [link["href"] for link in warning.find_all("a")] == [
        f"/settings/api-keys/{sooner.id}",
        f"/settings/api-keys/{soon.id}",
    ]

    listing = html(signed_in.get("/settings/api-keys"))
    flagged = [
        text(row.find("a"))
        for row in listing.select("tbody tr")
        if "Expires within 7 days" in text(row)
    ]
    assert sorted(flagged) == ["Soon", "Sooner"]


def test_overview_without_expiring_keys_has_no_warning(signed_in: FlaskClient, user: User) -> None:
    make_key(user, "secret", expires_at=_expiry(30))
    assert html(signed_in.get("/settings/usage")).find(class_="warning") is None


def read_csv(response: TestResponse) -> list[list[str]]:
    """The rows of a CSV download."""
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.usefixtures("calls", "frozen")
def test_key_csv_has_every_hour(signed_in: FlaskClient, key: ApiKey) -> None:
    response = signed_in.get(f"/settings/api-keys/{key.id}/usage.csv")
    assert (
        response.headers["Content-Disposition"] == f'attachment; filename="usage-key-{key.id}.csv"'
    )
    assert read_csv(response) == [
        [
            "hour",
            "calls",
            "ok",
            "client_error",
            "server_error",
            "rate_limited",
            "origin_denied",
            "scope_denied",
            "ip_denied",
            "avg_latency_ms",
        ],
        ["2026-11-10T08:00:00Z", "3", "0", "0", "0", "3", "0", "0", "0", "5.0"],
        ["2026-11-19T12:00:00Z", "7", "7", "0", "0", "0", "0", "0", "0", "30.0"],
        ["2026-11-20T07:00:00Z", "2", "2", "0", "0", "0", "0", "0", "0", "2.0"],
        ["2026-11-20T10:00:00Z", "5", "4", "0", "0", "0", "0", "1", "0", "5.6"],
    ]


def test_overview_csv_has_a_row_per_key(
    signed_in: FlaskClient, user: User, other_user: User, frozen: datetime
) -> None:
    used = make_key(user, "secret", label="Used")[0]
    unused = make_key(user, "publishable", label='Unused, "quoted"')[0]
    stranger = make_key(other_user, "secret", label="Stranger")[0]
    write(
        *[record(used, NOW - timedelta(minutes=1), latency_ms=2.0)] * 3,
        record(used, datetime(2026, 11, 1, 9), status=500, outcome="server_error", latency_ms=10.0),
        *[record(stranger, NOW)] * 4,
    )
    response = signed_in.get("/settings/usage.csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="usage.csv"'
    assert read_csv(response) == [
        [
            "key_id",
            "label",
            "type",
            "state",
            "total_calls",
            "calls_last_24h",
            "calls_30d",
            "success_rate",
            "avg_latency_ms",
            "p95_latency_ms",
            "last_used_at",
        ],
        [
            str(used.id),
            "Used",
            "secret",
            "active",
            "4",
            "3",
            "4",
            "0.7500",
            "4.0",
            "9.0",
            "2026-11-20T10:29:00Z",
        ],
        [
            str(unused.id),
            'Unused, "quoted"',
            "publishable",
            "active",
            "0",
            "0",
            "0",
            "",
            "",
            "",
            "",
        ],
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/settings/api-keys/{id}",
        "/settings/api-keys/{id}/usage",
        "/settings/api-keys/{id}/usage.csv",
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_another_merchants_key_usage_is_not_found(
    client: FlaskClient, user: User, other_user: User, path: str, htmx: bool
) -> None:
    theirs = make_key(other_user, "secret")[0]
    write(record(theirs, utcnow()))
    sign_in(client, user.email)
    response = client.get(path.format(id=theirs.id), headers=HX if htmx else {})
    assert response.status_code == 404
    assert "usage-panel" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/settings/usage", "/settings/usage.csv", "/settings/api-keys/1/usage"]
)
def test_usage_pages_need_a_signed_in_member(client: FlaskClient, user: User, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
