"""Bad input that answered 500: ids past 2^63 or in non-ASCII digits, odd query parameters and
NUL bytes. Each is now a 404 or the form's message beside its field, and nothing is written."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import create_app
from portal.accounts.models import User
from portal.extensions import db
from portal.store.models import Product
from tests import conftest
from tests.factories import Victim, add_product, secret_token
from tests.helpers import HX, field_errors, html, key_state, post, row_counts, text
from tests.security.conftest import form_body, portal_rules

RULES = portal_rules(create_app(conftest.test_config("sqlite://")))
WITH_IDS = [rule for rule in RULES if "<int:" in rule[1]]
# Past 2^63 (SQLite and PostgreSQL overflow), past 2^31 (PostgreSQL's INTEGER overflows), digits
# that Python's int() reads ("٣" is 3, "²" is not a number at all), and zero.
BAD_IDS = ["9223372036854775808", "2147483648", "٣", "²", "0", "99999999999999999999999"]


def put(rule: str, value: str) -> str:
    """The rule with every id argument set to `value` (and any other argument to a word)."""
    rule = re.sub(r"<int:\w+>", value, rule)
    rule = re.sub(r"<\w+>", "anything", rule)
    assert "<" not in rule, rule
    return rule


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(
    ("endpoint", "rule", "method"), WITH_IDS, ids=[f"{m} {r}" for _e, r, m in WITH_IDS]
)
def test_an_id_that_cannot_be_one_is_404(
    signed_in: FlaskClient, victim: Victim, endpoint: str, rule: str, method: str, bad_id: str
) -> None:
    token = conftest.csrf_token(signed_in, "/settings/markets")
    before = (row_counts(), key_state(victim.key.id))

    response = signed_in.open(
        put(rule, bad_id),
        method=method,
        data={**form_body(endpoint), "csrf_token": token} if method == "POST" else None,
    )

    assert response.status_code == 404, endpoint
    assert (row_counts(), key_state(victim.key.id)) == before


@pytest.mark.parametrize("value", ["²", "٣", "9223372036854775808", "-1", "1e3", "\x00", " 1"])
@pytest.mark.parametrize(
    "url",
    [
        "/settings/api-keys?market={value}",
        "/settings/api-keys?type=secret&state=active&market={value}",
        "/settings/markets/{market_id}/api-keys?market={value}",
        "/settings/audit?before={value}",
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_odd_query_parameters_are_ignored(
    signed_in: FlaskClient, victim: Victim, url: str, value: str, htmx: bool
) -> None:
    response = signed_in.get(url.format(value=value, **victim.ids), headers=HX if htmx else {})

    assert response.status_code == 200
    assert "Victim" in response.get_data(as_text=True)  # the filter is ignored, not an error


def test_an_audit_page_before_a_huge_id_is_the_first_page(
    signed_in: FlaskClient, victim: Victim
) -> None:
    first = signed_in.get("/settings/audit")
    past = signed_in.get("/settings/audit?before=9223372036854775808")

    assert text(html(past).find("tbody")) == text(html(first).find("tbody"))


@pytest.mark.parametrize("market_id", ["9223372036854775808", "2147483648", "٣", "²", "-4"])
@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_a_key_in_a_market_that_cannot_exist_is_refused_beside_the_field(
    signed_in: FlaskClient, victim: Victim, market_id: str, htmx: bool
) -> None:
    before = (row_counts(), key_state(victim.key.id))
    fields = {"label": "Sync job", "scopes": ["orders:read"], "rate_limit": "60"}

    edited = post(
        signed_in,
        f"/settings/api-keys/{victim.key.id}/edit",
        {**fields, "market_id": market_id},
        htmx=htmx,
    )
    created = post(
        signed_in,
        "/settings/api-keys/new",
        {**fields, "key_type": "secret", "market_id": market_id},
        htmx=htmx,
    )

    for response in (edited, created):
        assert response.status_code == 422
        assert "your markets" in field_errors(html(response), "market_id")
    assert (row_counts(), key_state(victim.key.id)) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("label", "Sync\x00job"), ("label", "\x00"), ("description", "Nightly\x00sync")],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_a_nul_byte_in_a_key_is_refused_beside_the_field(
    signed_in: FlaskClient, victim: Victim, field: str, value: str, htmx: bool
) -> None:
    before = (row_counts(), key_state(victim.key.id))
    fields = {"label": "Sync job", "scopes": ["orders:read"], "rate_limit": "60", field: value}

    edited = post(signed_in, f"/settings/api-keys/{victim.key.id}/edit", fields, htmx=htmx)
    created = post(signed_in, "/settings/api-keys/new", {**fields, "key_type": "secret"}, htmx=htmx)

    for response in (edited, created):
        assert response.status_code == 422
        assert "U+0000" in field_errors(html(response), field)
    assert (row_counts(), key_state(victim.key.id)) == before


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"code": "EU", "name": "Euro\x00pe"}, "name"),
        ({"code": "E\x00U", "name": "Europe"}, "code"),
    ],
)
def test_a_nul_byte_in_a_market_is_refused_beside_the_field(
    signed_in: FlaskClient, data: dict[str, str], field: str
) -> None:
    before = row_counts()

    response = post(signed_in, "/settings/markets", data, token_from="/settings/markets")

    assert response.status_code == 422
    assert field_errors(html(response), field)
    assert row_counts() == before


DIGIT_SYSTEMS = {
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
    "fullwidth": "０１２３４５６７８９",
}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("digits", DIGIT_SYSTEMS.values(), ids=DIGIT_SYSTEMS.keys())
def test_the_api_takes_ids_in_ascii_digits_only(
    client: FlaskClient, user: User, method: str, digits: str
) -> None:
    token = secret_token(user)
    product = add_product(user, name="Enamel mug")
    # Werkzeug's own converter read "٣" as 3: DELETE /admin/products/٣ deleted product 3.
    lookalike = str(product.id).translate(str.maketrans("0123456789", digits))

    response = client.open(
        f"/api/v1/admin/products/{lookalike}",
        method=method,
        json={"name": "Taken over"} if method == "PATCH" else None,
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    db.session.expire_all()
    assert db.session.scalars(select(Product.name)).all() == ["Enamel mug"]
    assert (
        client.get(
            f"/api/v1/admin/products/{product.id}", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
