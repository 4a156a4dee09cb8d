"""Script in every text a merchant (or a storefront caller) can type comes back as text."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from flask import Flask, current_app
from flask.testing import FlaskClient

from portal.extensions import db
from portal.keys.models import ApiKey
from portal.mail import saved_mails
from tests.conftest import csrf_token, sign_in
from tests.helpers import HX, confirmation_path, field_errors, html, post, text

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOADS = [SCRIPT, IMG]
BOTH = SCRIPT + IMG  # 55 characters: fits every text field


def assert_inert(body: str, where: str) -> None:
    """The payloads are not markup: no raw copy, no script without src, no event handler."""
    for payload in PAYLOADS:
        assert payload not in body, where
    soup = BeautifulSoup(body, "html.parser")
    assert all(script.get("src") for script in soup.find_all("script")), where
    assert not soup.find_all(lambda tag: any(name.startswith("on") for name in tag.attrs)), where
    assert not soup.find_all("img", src="x"), where


def register(client: FlaskClient, store_name: str) -> None:
    token = csrf_token(client, "/auth/register")
    response = client.post(
        "/auth/register",
        data={
            "csrf_token": token,
            "store_name": store_name,
            "email": "xss@shop.test",
            "password": "correct horse battery",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    sign_in(client, "xss@shop.test", "correct horse battery")
    [mail] = saved_mails(current_app.config["MAIL_DIR"])
    assert client.get(confirmation_path(mail)).status_code == 303  # welcomes on the next page


@pytest.fixture
def poisoned(app: Flask, client: FlaskClient) -> dict[str, int]:
    """A store whose every text holds both payloads, made through the forms and the API."""
    register(client, BOTH)
    market = post(
        client, "/settings/markets", {"code": "US", "name": BOTH}, token_from="/settings/markets"
    )
    assert market.status_code == 303
    market_id = int(
        html(client.get("/settings/markets"))
        .find("a", href=lambda h: h and "/markets/" in h)["href"]
        .split("/")[3]
    )
    created = post(
        client,
        "/settings/api-keys/new",
        {
            "key_type": "publishable",
            "label": BOTH,
            "description": BOTH,
            "rate_limit": "60",
            "market_id": str(market_id),
        },
    )
    assert created.status_code == 303  # to the page that shows the new key once
    key = db.session.query(ApiKey).filter_by(key_type="publishable").one()
    edited = post(
        client,
        f"/settings/api-keys/{key.id}/edit",
        {
            "label": "Storefront " + BOTH,
            "description": BOTH,
            "rate_limit": "61",
            "market_id": str(market_id),
        },
    )
    assert edited.status_code == 303
    # A storefront caller chooses its Origin header; the key page lists it among recent calls.
    token = html(client.get(f"/settings/api-keys/{key.id}")).find(id="publishable-key")["value"]
    client.get(
        "/api/v1/catalog/products",
        headers={"Authorization": f"Bearer {token}", "Origin": "https://a.test/" + BOTH},
    )
    client.get("/api/v1/key", headers={"Authorization": f"Bearer {token}", "Origin": BOTH})
    app.extensions["usage_recorder"].flush()
    return {"key": key.id, "market": market_id}


PAGES = [
    "/settings/api-keys",
    "/settings/api-keys?state=active",
    "/settings/api-keys/{key}",
    "/settings/api-keys/{key}/edit",
    "/settings/api-keys/{key}/rotate",
    "/settings/api-keys/{key}/revoke",
    "/settings/api-keys/{key}/usage",
    "/settings/markets",
    "/settings/markets/{market}/api-keys",
    "/settings/audit",
    "/settings/usage",
]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_stored_payloads_render_as_text_on_every_page(
    client: FlaskClient, poisoned: dict[str, int], htmx: bool
) -> None:
    shown_as_text = 0
    for route in PAGES:
        url = route.format(**poisoned)
        response = client.get(url, headers=HX if htmx else {})
        assert response.status_code == 200, url
        body = response.get_data(as_text=True)
        assert_inert(body, url)
        shown_as_text += text(html(response)).count(SCRIPT)
    assert shown_as_text >= 20  # the payloads were on the pages, as visible text


def test_the_origin_a_caller_sent_is_shown_as_text_in_recent_calls(
    client: FlaskClient, poisoned: dict[str, int]
) -> None:
    panel = html(client.get(f"/settings/api-keys/{poisoned['key']}/usage", headers=HX))

    assert BOTH in text(panel.find(id="usage-panel"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_origins-0", "https://shop.test/" + SCRIPT),
        ("allowed_origins-0", IMG),
        ("allowed_ip_ranges-0", SCRIPT),
        ("allowed_ip_ranges-0", IMG),
        ("label", "x" * 81 + SCRIPT),
        ("rate_limit", IMG),
        ("expires_at", SCRIPT),
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_invalid_input_is_echoed_escaped_beside_its_field(
    signed_in: FlaskClient, field: str, value: str, htmx: bool
) -> None:
    data = {
        "key_type": "secret" if "ip" in field else "publishable",
        "label": "Shop",
        "rate_limit": "60",
        field: value,
    }

    response = post(signed_in, "/settings/api-keys/new", data, htmx=htmx)

    assert response.status_code == 422
    assert_inert(response.get_data(as_text=True), field)
    soup = html(response)
    assert field_errors(soup, field)
    control = soup.find(attrs={"name": field})
    if control.name == "input" and control.get("type") != "number":
        assert control["value"] == value  # kept as typed, as an attribute value


def test_a_market_code_too_long_for_the_payload_is_echoed_escaped(signed_in: FlaskClient) -> None:
    response = post(
        signed_in,
        "/settings/markets",
        {"code": SCRIPT, "name": IMG},
        token_from="/settings/markets",
    )

    assert response.status_code == 422
    assert_inert(response.get_data(as_text=True), "markets")
    assert html(response).find(attrs={"name": "code"})["value"] == SCRIPT


def test_the_store_name_is_escaped_in_the_header_and_the_welcome(client: FlaskClient) -> None:
    register(client, BOTH)

    response = client.get("/settings/api-keys")

    assert_inert(response.get_data(as_text=True), "welcome")
    assert text(html(response).find(class_="store")) == BOTH
    assert BOTH in text(html(response).find(class_="flashes"))
