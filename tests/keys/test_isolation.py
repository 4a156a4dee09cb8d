"""Only a signed-in member of a merchant sees its keys, markets and audit log, and only its own
markets can hold its keys. (Every route against another merchant's ids, without a session and
without a CSRF token is attacked in tests/security/test_routes.py.)"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts.models import Market, User
from portal.extensions import db
from portal.keys import service as keys
from tests.conftest import csrf_token, make_key, sign_in
from tests.factories import Victim
from tests.helpers import field_errors, html, key_state, snapshot, text


@pytest.fixture
def intruder(client: FlaskClient, other_user: User) -> FlaskClient:
    """A browser signed in as a member of another merchant."""
    sign_in(client, other_user.email)
    return client


def test_the_list_shows_only_the_merchants_own_keys(
    intruder: FlaskClient, victim: Victim, other_user: User
) -> None:
    own, _ = make_key(other_user, "publishable", label="Mine")

    for url in (
        "/settings/api-keys",
        "/settings/api-keys?type=secret",
        f"/settings/api-keys?market={victim.market.id}",
    ):
        body = intruder.get(url).get_data(as_text=True)
        assert "Victim" not in body and victim.key.masked not in body, url
    assert own.masked in intruder.get("/settings/api-keys").get_data(as_text=True)


def test_the_audit_log_shows_only_the_merchants_own_events(
    intruder: FlaskClient, victim: Victim, other_user: User, user: User
) -> None:
    keys.revoke_key(victim.key, keys.Actor(name=user.email, ip="192.0.2.99"))
    make_key(other_user, "publishable", label="Mine")

    soup = html(intruder.get("/settings/audit"))

    rows = soup.find("tbody").find_all("tr")
    assert len(rows) == 1 and "Mine" in text(rows[0])
    page = text(soup)
    assert user.email not in page and "192.0.2.99" not in page and "Victim" not in page


def test_markets_of_other_merchants_are_not_listed_or_offered(
    intruder: FlaskClient, victim: Victim
) -> None:
    markets_page = text(html(intruder.get("/settings/markets")).find("table"))
    form = html(intruder.get("/settings/api-keys/new")).find(id="key-form")

    assert "United States" not in markets_page
    assert [
        option["value"]
        for option in form.find("select", attrs={"name": "market_id"}).find_all("option")
    ] == [""]


def test_a_key_cannot_be_put_in_another_merchants_market(
    intruder: FlaskClient, victim: Victim, other_user: User
) -> None:
    own, _ = make_key(other_user, "secret", label="Mine")
    token = csrf_token(intruder, "/settings/api-keys/new")
    before = snapshot()
    foreign = str(victim.market.id)

    created = intruder.post(
        "/settings/api-keys/new",
        data={"csrf_token": token, "key_type": "secret", "label": "X", "rate_limit": "60",
              "market_id": foreign},
    )  # fmt: skip
    edited = intruder.post(
        f"/settings/api-keys/{own.id}/edit",
        data={"csrf_token": token, "label": "Mine", "scopes": ["orders:read"],
              "rate_limit": "60", "market_id": foreign},
    )  # fmt: skip

    for response in (created, edited):
        assert response.status_code == 422
        assert "your markets" in field_errors(html(response), "market_id")
    assert snapshot() == before
    assert key_state(own.id)["market_id"] is None


def test_taking_over_another_merchants_market_code_is_allowed_but_separate(
    intruder: FlaskClient, victim: Victim, other_user: User
) -> None:
    response = intruder.post(
        "/settings/markets",
        data={
            "csrf_token": csrf_token(intruder, "/settings/markets"),
            "code": "US",
            "name": "Mine",
        },
    )

    assert response.status_code == 303
    codes = db.session.scalars(select(Market.merchant_id).where(Market.code == "US")).all()
    assert sorted(codes) == sorted([victim.market.merchant_id, other_user.merchant_id])
