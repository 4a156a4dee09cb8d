"""Input that once answered 500: each is a 4xx in the SPEC's error shape, and writes nothing."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.extensions import db
from portal.store.models import Cart, Customer, Order, Product
from tests.factories import Api, add_product, error_of, secret_token

DEEP = 100_000


def rows() -> tuple[int, int, int, int]:
    """How many products, carts, orders and customers exist."""
    return tuple(  # type: ignore[return-value]
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Product, Cart, Order, Customer)
    )


@pytest.fixture
def api(client: FlaskClient, user: User) -> Api:
    """A secret key with every scope."""
    return Api(client, secret_token(user))


def send(api: Api, method: str, path: str, raw: str) -> tuple[int, str, str]:
    """Send a raw JSON text; returns (status, code, message) of the error."""
    return error_of(api.call(method, path, data=raw, headers={"Content-Type": "application/json"}))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/products"),
        ("POST", "/carts"),
        ("POST", "/checkouts"),
        ("PATCH", "/admin/products/{product}"),
        ("POST", "/carts/{cart}/items"),
    ],
)
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_100000_deep_is_refused(
    api: Api, user: User, method: str, path: str, opener: str
) -> None:
    product = add_product(user)
    cart = api.post("/carts").get_json()["id"]
    before = rows()
    closer = "]" if opener == "[" else "}"
    raw = '{"items": ' + opener * DEEP + "1" + closer * DEEP + "}"
    status, code, message = send(api, method, path.format(product=product.id, cart=cart), raw)
    assert (status, code) == (400, "invalid_request")
    assert "nested too deeply" in message
    assert rows() == before


def test_moderately_deep_json_is_refused_before_it_is_walked(api: Api) -> None:
    # Deep enough to matter to a recursive walk, shallow enough for the JSON parser.
    raw = json.dumps({"name": "Mug", "price": 1, "currency": "USD"})[:-1]
    raw += ', "x": ' + "[" * 40 + "1" + "]" * 40 + "}"
    status, code, message = send(api, "POST", "/admin/products", raw)
    assert (status, code) == (400, "invalid_request")
    assert message == "The body is nested too deeply (at most 32 levels)."
    assert rows() == (0, 0, 0, 0)


LONE = "\\ud800"  # as JSON text: a UTF-16 half that no UTF-8 text (and no column) can hold


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/products", f'{{"name": "Mug{LONE}", "price": 1, "currency": "USD"}}', "name"),
        (
            "/admin/products",
            f'{{"name": "Mug", "price": 1, "currency": "USD", "description": "{LONE}"}}',
            "description",
        ),
        ("/admin/products", f'{{"name": "M", "price": 1, "currency": "U{LONE}D"}}', "currency"),
        (
            "/admin/products",
            f'{{"name": "M", "price": 1, "currency": "USD", "sku": "{LONE}"}}',
            "sku",
        ),
        (
            "/admin/products",
            f'{{"name": "M", "price": 1, "currency": "USD", "markets": ["US", "{LONE}"]}}',
            "markets[1]",
        ),
        ("/admin/products", f'{{"name": "M", "price": 1, "currency": "USD", "{LONE}": 1}}', "body"),
        ("/carts", f'{{"items": [{{"product_id": 1, "note{LONE}": 2}}]}}', "items[0]"),
        ("/checkouts", f'{{"cart_id": "cart_{LONE}", "email": "a@b.test"}}', "cart_id"),
        ("/checkouts", f'{{"cart_id": "cart_x", "email": "a{LONE}@b.test"}}', "email"),
        ("/checkouts", '{"cart_id": "cart_x", "email": "a@b.test\\udfff"}', "email"),
    ],
)
def test_a_lone_surrogate_in_any_string_is_refused(
    api: Api, path: str, body: str, field: str
) -> None:
    status, code, message = send(api, "POST", path, body)
    assert (status, code) == (400, "invalid_request")
    assert message == f"{field} must not contain a lone surrogate (U+D800 to U+DFFF)."
    assert rows() == (0, 0, 0, 0)


def test_a_lone_surrogate_in_an_update_changes_nothing(api: Api, user: User) -> None:
    mug = add_product(user)
    raw = f'{{"price": 5, "name": "New{LONE}"}}'
    assert send(api, "PATCH", f"/admin/products/{mug.id}", raw)[:2] == (400, "invalid_request")
    db.session.expire_all()
    assert (db.session.get(Product, mug.id).name, db.session.get(Product, mug.id).price) == (
        "Enamel mug",
        1800,
    )


def test_a_surrogate_pair_is_just_an_emoji(api: Api) -> None:
    response = api.call(
        "POST",
        "/admin/products",
        data='{"name": "Mug \\ud83d\\udcb3", "price": 1, "currency": "USD"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.get_json()["name"] == "Mug 💳"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("end=0001-01-01", "end"),
        ("end=9999-12-31T23:59:59-23:59", "end"),
        ("start=0001-01-01", "start"),
        ("start=9999-12-31T23:59:59-23:59", "start"),
        ("start=0001-01-01T00:00:00%2B23:59", "start"),
        ("end=9999-12-31", "end"),
    ],
)
def test_usage_ranges_at_the_ends_of_the_calendar_are_refused(
    api: Api, query: str, field: str
) -> None:
    status, code, message = error_of(api.get(f"/admin/usage?{query}"))
    assert (status, code) == (400, "invalid_request")
    assert message.startswith(field)
    assert "between 2000-01-01 and 9000-01-01" in message or "ISO 8601" in message
