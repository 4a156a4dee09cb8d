"""Only a signed-in member of a merchant sees or touches its keys, markets and audit log."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts import service as accounts
from portal.accounts.models import Market, Merchant, User
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import ApiKey
from tests.conftest import csrf_token, make_key, sign_in
from tests.helpers import HX, count, field_errors, html, snapshot, text

KEY_ROUTES = ["/settings/api-keys/{key}", "/settings/api-keys/{key}/edit",
              "/settings/api-keys/{key}/rotate", "/settings/api-keys/{key}/revoke"]  # fmt: skip
MARKET_ROUTES = ["/settings/markets/{market}/api-keys"]
POST_BODIES: dict[str, dict[str, Any]] = {
    "/settings/api-keys/{key}/edit": {
        "label": "Taken over",
        "scopes": ["orders:write"],
        "rate_limit": "10000",
    },  # fmt: skip
    "/settings/api-keys/{key}/rotate": {"grace": "7d"},
}
SETTINGS_PAGES = [
    "/settings/api-keys",
    "/settings/api-keys/new",
    "/settings/markets",
    "/settings/audit",
    *KEY_ROUTES,
    *MARKET_ROUTES,
]
POST_ROUTES = [
    "/settings/api-keys/new",
    "/settings/api-keys/{key}/edit",
    "/settings/api-keys/{key}/rotate",
    "/settings/api-keys/{key}/revoke",
    "/settings/markets",
]


@pytest.fixture
def victim(user: User) -> dict[str, Any]:
    """`user`'s merchant with a market, a key in it, and its audit trail."""
    market = accounts.add_market(user.merchant_id, "US", "United States")
    key, _ = make_key(user, "secret", label="Victim's key", market_id=market.id)
    return {"key": key, "market": market}


def fill(route: str, victim: dict[str, Any]) -> str:
    """The route with the victim's ids in it."""
    return route.format(key=victim["key"].id, market=victim["market"].id)


def key_columns(key: ApiKey) -> dict[str, Any]:
    """Everything about a key, to show nothing changed."""
    db.session.expire_all()
    row = db.session.get(ApiKey, key.id)
    return {column.name: getattr(row, column.key) for column in ApiKey.__table__.columns}


@pytest.fixture
def intruder(client: FlaskClient, other_user: User) -> FlaskClient:
    """A browser signed in as a member of another merchant."""
    sign_in(client, other_user.email)
    return client


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("route", KEY_ROUTES + MARKET_ROUTES)
def test_another_merchants_key_or_market_is_404_for_every_method(
    intruder: FlaskClient, victim: dict[str, Any], route: str, method: str, htmx: bool
) -> None:
    before_key, before_counts = key_columns(victim["key"]), snapshot()
    data = {
        "csrf_token": csrf_token(intruder, "/settings/api-keys/new"),
        **POST_BODIES.get(route, {}),
    }

    response = intruder.open(
        fill(route, victim),
        method=method,
        data=data if method == "POST" else None,
        headers=HX if htmx else {},
    )

    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Victim" not in body and victim["key"].masked not in body
    assert key_columns(victim["key"]) == before_key
    assert snapshot() == before_counts


def test_the_list_shows_only_the_merchants_own_keys(
    intruder: FlaskClient, victim: dict[str, Any], other_user: User
) -> None:
    own, _ = make_key(other_user, "publishable", label="Mine")

    for url in (
        "/settings/api-keys",
        "/settings/api-keys?type=secret",
        f"/settings/api-keys?market={victim['market'].id}",
    ):
        body = intruder.get(url).get_data(as_text=True)
        assert "Victim" not in body and victim["key"].masked not in body, url
    assert own.masked in intruder.get("/settings/api-keys").get_data(as_text=True)


def test_the_audit_log_shows_only_the_merchants_own_events(
    intruder: FlaskClient, victim: dict[str, Any], other_user: User, user: User
) -> None:
    keys.revoke_key(victim["key"], keys.Actor(name=user.email, ip="192.0.2.99"))
    make_key(other_user, "publishable", label="Mine")

    soup = html(intruder.get("/settings/audit"))

    rows = soup.find("tbody").find_all("tr")
    assert len(rows) == 1 and "Mine" in text(rows[0])
    page = text(soup)
    assert user.email not in page and "192.0.2.99" not in page and "Victim" not in page


def test_markets_of_other_merchants_are_not_listed_or_offered(
    intruder: FlaskClient, victim: dict[str, Any]
) -> None:
    markets_page = text(html(intruder.get("/settings/markets")).find("table"))
    form = html(intruder.get("/settings/api-keys/new")).find(id="key-form")

    assert "United States" not in markets_page
    assert [
        option["value"]
        for option in form.find("select", attrs={"name": "market_id"}).find_all("option")
    ] == [""]


def test_a_key_cannot_be_put_in_another_merchants_market(
    intruder: FlaskClient, victim: dict[str, Any], other_user: User
) -> None:
    own, _ = make_key(other_user, "secret", label="Mine")
    token = csrf_token(intruder, "/settings/api-keys/new")
    before = snapshot()
    foreign = str(victim["market"].id)

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
    assert key_columns(own)["market_id"] is None


def test_taking_over_another_merchants_market_code_is_allowed_but_separate(
    intruder: FlaskClient, victim: dict[str, Any], other_user: User
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
    assert sorted(codes) == sorted([victim["market"].merchant_id, other_user.merchant_id])


@pytest.mark.parametrize("route", SETTINGS_PAGES)
def test_settings_pages_need_a_session(
    client: FlaskClient, victim: dict[str, Any], route: str
) -> None:
    url = fill(route, victim)

    response = client.get(url)

    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/auth/login")
    assert html(client.get(response.headers["Location"])).find("h1").get_text() == "Sign in"


@pytest.mark.parametrize("route", SETTINGS_PAGES)
def test_htmx_without_a_session_is_sent_to_the_whole_login_page(
    client: FlaskClient, victim: dict[str, Any], route: str
) -> None:
    url = fill(route, victim)

    response = client.get(url, headers=HX)

    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/auth/login?next=")
    assert response.get_data() == b""


@pytest.mark.parametrize("route", POST_ROUTES)
def test_settings_posts_need_a_session(
    client: FlaskClient, victim: dict[str, Any], route: str
) -> None:
    token = csrf_token(client, "/auth/login")
    before = (snapshot(), count(Market), key_columns(victim["key"]))

    response = client.post(
        fill(route, victim),
        data={"csrf_token": token, "label": "x", "code": "EU", "name": "Europe", "grace": "now"},
    )

    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/auth/login")
    assert (snapshot(), count(Market), key_columns(victim["key"])) == before


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize("route", POST_ROUTES + ["/auth/logout"])
def test_every_post_needs_a_csrf_token(
    signed_in: FlaskClient, user: User, victim: dict[str, Any], route: str, htmx: bool
) -> None:
    before = (snapshot(), count(Market), key_columns(victim["key"]), user.session_epoch)

    response = signed_in.post(
        fill(route, victim),
        data={"key_type": "secret", "label": "Forged", "rate_limit": "60", "grace": "now",
              "code": "EU", "name": "Europe", "scopes": ["orders:write"]},
        headers=HX if htmx else {},
    )  # fmt: skip

    assert response.status_code == 400
    assert "Form expired" in text(html(response))
    db.session.refresh(user)
    assert (snapshot(), count(Market), key_columns(victim["key"]), user.session_epoch) == before
    assert signed_in.get("/settings/api-keys").status_code == 200


@pytest.mark.parametrize(
    ("route", "data"),
    [
        ("/auth/register", {"store_name": "Forged", "email": "f@x.test", "password": "x" * 12}),
        ("/auth/login", {"email": "owner@shop.test", "password": "correct horse battery"}),
    ],
)
def test_account_forms_need_a_csrf_token(
    client: FlaskClient, user: User, route: str, data: dict[str, str]
) -> None:
    merchants = count(Merchant)

    response = client.post(route, data=data)

    assert response.status_code == 400
    assert count(Merchant) == merchants
    assert client.get("/settings/api-keys").status_code == 302


def test_a_csrf_token_of_another_session_is_refused(
    app, signed_in: FlaskClient, other_user: User
) -> None:  # noqa: ANN001
    attacker = app.test_client()
    sign_in(attacker, other_user.email)
    stolen = csrf_token(attacker, "/settings/api-keys/new")

    response = signed_in.post(
        "/settings/api-keys/new",
        data={"csrf_token": stolen, "key_type": "secret", "label": "Forged", "rate_limit": "60"},
    )

    assert response.status_code == 400
    assert count(ApiKey) == 0
