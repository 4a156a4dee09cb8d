"""CSV exports through a real threaded server (where the request's session ends before the body
streams), and cells that a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import http.cookiejar
import io
import re
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from portal.accounts.models import User
from portal.database import utcnow
from tests.conftest import PASSWORD, make_key
from tests.usage.conftest import record, write


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The test's app served from a thread on 127.0.0.1, on the test's database."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def signed_in_opener(base_url: str, email: str) -> urllib.request.OpenerDirector:
    """An HTTP client with a cookie jar, signed in through the login form."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(f"{base_url}/auth/login", timeout=10) as response:
        page = response.read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
    with opener.open(f"{base_url}/auth/login", data=form.encode(), timeout=10) as response:
        assert response.url.endswith("/settings/api-keys")
    return opener


def download(opener: urllib.request.OpenerDirector, url: str) -> list[list[str]]:
    """A CSV download's rows; fails on any status but 200."""
    with opener.open(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/csv"
        return list(csv.reader(io.StringIO(response.read().decode())))


def test_key_csv_with_usage_through_a_real_server(app: Flask, live_url: str, user: User) -> None:
    key = make_key(user, "secret", label="Back office")[0]
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    write(
        *[
            record(key, start + timedelta(hours=hour), latency_ms=float(hour % 7 + 1))
            for hour in range(0, 72)
            for _ in range(2)
        ],
        record(key, start, status=429, outcome="rate_limited"),
    )
    opener = signed_in_opener(live_url, user.email)

    rows = download(opener, f"{live_url}/settings/api-keys/{key.id}/usage.csv")

    assert rows[0][:3] == ["hour", "calls", "ok"]
    assert len(rows) == 1 + 72
    assert rows[1][:3] == [start.isoformat(timespec="seconds") + "Z", "3", "2"]
    assert sum(int(row[1]) for row in rows[1:]) == 145


def test_overview_csv_through_a_real_server(app: Flask, live_url: str, user: User) -> None:
    keys = [make_key(user, "publishable", label=f"Storefront {n}")[0] for n in range(3)]
    write(*[record(key, utcnow() - timedelta(minutes=5)) for key in keys for _ in range(4)])
    opener = signed_in_opener(live_url, user.email)

    rows = download(opener, f"{live_url}/settings/usage.csv")

    assert [row[1] for row in rows[1:]] == ["Storefront 0", "Storefront 1", "Storefront 2"]
    assert [row[4] for row in rows[1:]] == ["4", "4", "4"]


@pytest.mark.parametrize(
    ("label", "cell"),
    [
        ('=HYPERLINK("http://evil.test","Click")', '\'=HYPERLINK("http://evil.test","Click")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("  =1+1", "'=1+1"),  # the label is trimmed first
        ("Storefront = web", "Storefront = web"),
        ("Storefront", "Storefront"),
    ],
)
def test_csv_cells_that_would_run_as_formulas_are_neutralised(
    signed_in: FlaskClient, user: User, label: str, cell: str
) -> None:
    make_key(user, "secret", label=label)
    response = signed_in.get("/settings/usage.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[1][1] == cell
    assert rows[1][2:5] == ["secret", "active", "0"]  # numbers stay numbers
