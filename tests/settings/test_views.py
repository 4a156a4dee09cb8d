"""`/settings/store`: the store settings page, with and without htmx."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.accounts.models import Merchant, User
from portal.extensions import db
from tests.helpers import HX, assert_fragment, assert_full_page, field_errors, post, text

URL = "/settings/store"
VALID = {
    "store_name": "Blue Rim Ceramics",
    "support_email": "help@bluerim.test",
    "storefront_url": "https://shop.bluerim.test",
    "checkout_hold_minutes": "45",
    "customer_access_minutes": "20",
    "customer_refresh_days": "60",
    "revoke_leaked_keys": "y",
}


def merchant(user: User) -> Merchant:
    db.session.expire_all()
    return db.session.get(Merchant, user.merchant_id)


def settings_of(user: User) -> dict[str, Any]:
    row = merchant(user)
    return {
        "name": row.name,
        "support_email": row.support_email,
        "storefront_url": row.storefront_url,
        "checkout_hold_minutes": row.checkout_hold_minutes,
        "customer_access_minutes": row.customer_access_minutes,
        "customer_refresh_days": row.customer_refresh_days,
        "revoke_leaked_keys": row.revoke_leaked_keys,
    }


def test_the_page_shows_the_current_settings(signed_in: FlaskClient, user: User) -> None:
    soup = assert_full_page(signed_in.get(URL))
    form = soup.find("form", id="store-settings")
    assert form["method"] == "post" and form.find("input", attrs={"name": "csrf_token"})
    assert form.find("input", attrs={"name": "store_name"})["value"] == "Shop One"
    assert form.find("input", attrs={"name": "checkout_hold_minutes"})["value"] == "30"
    assert form.find("input", attrs={"name": "customer_access_minutes"})["value"] == "15"
    assert form.find("input", attrs={"name": "customer_refresh_days"})["value"] == "30"
    assert form.find("input", attrs={"name": "revoke_leaked_keys"}).has_attr("checked")
    assert "Revoke leaked secret keys automatically" in text(form)


def test_saving_without_javascript_redirects_and_keeps_the_values(
    signed_in: FlaskClient, user: User
) -> None:
    response = post(signed_in, URL, VALID, token_from=URL)
    assert response.status_code == 303 and response.headers["Location"].endswith(URL)
    assert settings_of(user) == {
        "name": "Blue Rim Ceramics",
        "support_email": "help@bluerim.test",
        "storefront_url": "https://shop.bluerim.test",
        "checkout_hold_minutes": 45,
        "customer_access_minutes": 20,
        "customer_refresh_days": 60,
        "revoke_leaked_keys": True,
    }
    page = assert_full_page(signed_in.get(URL))
    assert "Settings saved." in text(page)
    assert "Blue Rim Ceramics" in text(page.find("header"))


def test_unchecking_the_box_turns_automatic_revocation_off(
    signed_in: FlaskClient, user: User
) -> None:
    form = {name: value for name, value in VALID.items() if name != "revoke_leaked_keys"}
    assert post(signed_in, URL, form, token_from=URL).status_code == 303
    assert merchant(user).revoke_leaked_keys is False


def test_saving_with_htmx_answers_the_fragment(signed_in: FlaskClient, user: User) -> None:
    response = post(signed_in, URL, VALID, htmx=True, token_from=URL)
    assert response.status_code == 200
    soup = assert_fragment(response)
    assert "Settings saved." in text(soup)
    assert soup.find("input", attrs={"name": "store_name"})["value"] == "Blue Rim Ceramics"
    assert response.headers["HX-Push-Url"].endswith(URL)


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("store_name", "   ", "non-empty"),
        ("support_email", "not-an-email", "email address"),
        ("storefront_url", "javascript:alert(1)", "http or https URL"),
        ("checkout_hold_minutes", "4", "from 5 to 1440"),
        ("checkout_hold_minutes", "1441", "at most 1440"),
        ("checkout_hold_minutes", "half an hour", "whole number"),
        ("customer_access_minutes", "", "whole number"),
        ("customer_refresh_days", "0", "from 1 to 365"),
    ],
)
def test_bad_input_shows_the_message_beside_the_field_and_changes_nothing(
    signed_in: FlaskClient, user: User, field: str, value: str, words: str, htmx: bool
) -> None:
    before = settings_of(user)
    response = post(signed_in, URL, {**VALID, field: value}, htmx=htmx, token_from=URL)
    assert response.status_code == 422
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    assert words in field_errors(soup, field)
    assert soup.find("input", attrs={"name": field})["aria-invalid"] == "true"
    assert settings_of(user) == before


def test_a_post_without_the_csrf_token_is_refused(signed_in: FlaskClient, user: User) -> None:
    before = settings_of(user)
    response = signed_in.post(URL, data=VALID)
    assert response.status_code == 400
    assert settings_of(user) == before


def test_the_page_needs_a_signed_in_member(client: FlaskClient, user: User) -> None:
    response = client.get(URL)
    assert response.status_code in (302, 303) and "/auth/login" in response.headers["Location"]


def test_html_in_the_store_name_is_escaped(signed_in: FlaskClient, user: User) -> None:
    post(signed_in, URL, {**VALID, "store_name": "<script>alert(1)</script>"}, token_from=URL)
    body = signed_in.get(URL).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_without_htmx_every_store_field_is_an_input(signed_in: FlaskClient) -> None:
    soup = assert_full_page(signed_in.get(URL, headers={}))
    names = {node["name"] for node in soup.find(id="store-settings").find_all("input")}
    assert set(VALID) <= names
    assert assert_fragment(signed_in.get(URL, headers=HX))
