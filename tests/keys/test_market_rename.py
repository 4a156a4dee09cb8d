"""Renaming a market from the markets page: the name changes, the code and its keys stay."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts import service as accounts
from portal.accounts.models import Market, User
from portal.extensions import db
from portal.keys.models import AuditEvent
from tests.conftest import csrf_token, make_key, sign_in
from tests.helpers import HX, assert_fragment, assert_full_page, field_errors, html, post, text

BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
LONG_NAME = "Deutschland, Österreich und die Schweiz (DACH) – Großhandel & Endkunden, 2027 ab"


@pytest.fixture
def market(user: User) -> Market:
    """The signed-in merchant's market US, with a key serving it alone."""
    market = accounts.add_market(user.merchant_id, "US", "United States")
    make_key(user, "secret", label="US stock sync", market_id=market.id)
    return market


def _rename(client: FlaskClient, market_id: int, name: str, htmx: bool = False):  # noqa: ANN202
    return post(
        client,
        f"/settings/markets/{market_id}/rename",
        {"name": name},
        htmx=htmx,
        token_from="/settings/markets",
    )


def _state(market_id: int) -> tuple[str, str, int]:
    """The market's code and name, and how many audit events the database holds."""
    db.session.expire_all()
    market = db.session.get(Market, market_id)
    return market.code, market.name, len(list(db.session.scalars(select(AuditEvent.id))))


def test_the_markets_page_offers_rename_per_market(
    signed_in: FlaskClient, user: User, market: Market
) -> None:
    accounts.add_market(user.merchant_id, "EU", "Europe")

    soup = assert_full_page(signed_in.get("/settings/markets"))

    links = [link for link in soup.find_all("a") if text(link).startswith("Rename")]
    assert [text(link) for link in links] == ["Rename EU", "Rename US"]
    assert links[1]["href"] == f"/settings/markets/{market.id}/rename"
    assert links[1]["hx-get"] == links[1]["href"] and links[1]["hx-target"] == "#main"


@BOTH
def test_the_rename_form_shows_the_current_name(
    signed_in: FlaskClient, market: Market, htmx: bool
) -> None:
    response = signed_in.get(f"/settings/markets/{market.id}/rename", headers=HX if htmx else {})

    assert response.status_code == 200
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    form = soup.find("form", attrs={"action": f"/settings/markets/{market.id}/rename"})
    assert form.find("input", attrs={"name": "csrf_token"})["value"]
    assert form.find("input", attrs={"name": "name"})["value"] == "United States"
    assert "US" in text(soup.find("h1"))
    assert form.find("button", string="Rename market") is not None
    if not htmx:
        assert text(soup.find("a", attrs={"aria-current": "page"})) == "Markets"


@BOTH
def test_rename_a_market_keeps_its_code_and_keys(
    signed_in: FlaskClient, user: User, market: Market, htmx: bool
) -> None:
    response = _rename(signed_in, market.id, f"  {LONG_NAME}  ", htmx=htmx)

    if htmx:
        assert response.status_code == 200
        assert response.headers["HX-Push-Url"] == "/settings/markets"
        soup = assert_fragment(response)
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == "/settings/markets"
        soup = html(signed_in.get("/settings/markets"))
    assert f"Market US renamed to “{LONG_NAME}”." in text(soup.find(class_="flashes"))
    row = text(soup.find("table"))
    assert LONG_NAME in row and "United States" not in row and "1 key" in row
    db.session.expire_all()
    renamed = accounts.find_market_by_code(user.merchant_id, "US")
    assert (renamed.id, renamed.name) == (market.id, LONG_NAME)
    keys_page = text(html(signed_in.get(f"/settings/markets/{market.id}/api-keys")))
    assert "US stock sync" in keys_page


def test_the_audit_log_says_who_renamed_which_market(
    signed_in: FlaskClient, user: User, market: Market
) -> None:
    _rename(signed_in, market.id, "<b>USA</b> & territories")

    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "market_renamed")
    ).one()
    assert (event.actor, event.actor_user_id, event.merchant_id) == (
        user.email,
        user.id,
        user.merchant_id,
    )
    assert event.details["from"] == "United States"
    assert event.details["to"] == "<b>USA</b> & territories"
    log = signed_in.get("/settings/audit?action=market_renamed")
    soup = html(log)
    assert soup.find("b", string="USA") is None  # escaped, never markup
    row = text(soup.find("td", class_="sentence").find_parent("tr"))
    assert "Renamed market US from “United States” to “<b>USA</b> & territories”." in row
    assert user.email in row


@BOTH
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "required"),
        ("   ", "required"),
        ("x" * 81, "80 characters"),
        ("United\x00States", "NUL"),
    ],
    ids=["empty", "spaces", "too-long", "nul"],
)
def test_a_bad_name_is_refused_beside_the_field_and_changes_nothing(
    signed_in: FlaskClient, market: Market, name: str, message: str, htmx: bool
) -> None:
    before = _state(market.id)

    response = _rename(signed_in, market.id, name, htmx=htmx)

    assert response.status_code == 422
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    assert message in field_errors(soup, "name")
    assert _state(market.id) == before


def test_the_same_name_again_records_nothing(signed_in: FlaskClient, market: Market) -> None:
    before = _state(market.id)

    response = _rename(signed_in, market.id, "United States")

    assert response.status_code == 303
    assert _state(market.id) == before


@BOTH
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_merchants_market_is_404_and_stays(
    app: Flask, other_user: User, market: Market, method: str, htmx: bool
) -> None:
    intruder = app.test_client()
    sign_in(intruder, other_user.email)
    token = csrf_token(intruder, "/settings/markets")
    before = _state(market.id)

    response = intruder.open(
        f"/settings/markets/{market.id}/rename",
        method=method,
        data={"name": "Taken over", "csrf_token": token} if method == "POST" else None,
        headers=HX if htmx else {},
    )

    assert response.status_code == 404
    assert "United States" not in response.get_data(as_text=True)
    assert _state(market.id) == before


def test_without_a_csrf_token_nothing_is_renamed(signed_in: FlaskClient, market: Market) -> None:
    before = _state(market.id)

    response = signed_in.post(f"/settings/markets/{market.id}/rename", data={"name": "Forged"})

    assert response.status_code == 400
    assert _state(market.id) == before


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_members_without_markets_write_cannot_rename(
    client: FlaskClient, user: User, market: Market, role: str
) -> None:
    accounts.add_member(user.email, f"{role}@shop.test", role, "correct horse battery")
    sign_in(client, f"{role}@shop.test", "correct horse battery")
    before = _state(market.id)

    markets_page = html(client.get("/settings/markets"))
    form_page = client.get(f"/settings/markets/{market.id}/rename")
    response = post(
        client, f"/settings/markets/{market.id}/rename", {"name": "X"}, token_from="/auth/login"
    )

    assert [a for a in markets_page.find_all("a") if text(a).startswith("Rename")] == []
    assert form_page.status_code == response.status_code == 403
    assert "Your account may not do this" in text(html(response))
    assert _state(market.id) == before
