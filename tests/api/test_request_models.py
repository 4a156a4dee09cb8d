"""Request bodies are parsed by their pydantic model: each refusal is the SPEC's 400 with a
message naming the field (with its path) and what it accepts, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.extensions import db
from portal.store.models import Cart, Product
from tests.factories import Api, add_product, error_of, secret_token


@pytest.fixture
def api(client: FlaskClient, user: User) -> Api:
    """A secret key with every scope."""
    return Api(client, secret_token(user))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"items": [{"product_id": 1, "quantity": 0}]},
            "items[0].quantity must be an integer from 1 to 1000.",
        ),
        (
            {"items": [{"product_id": 1}, {"product_id": 1, "quantity": 1001}]},
            "items[1].quantity must be at most 1000.",
        ),
        ({"items": [{"product_id": True}]}, "items[0].product_id must be a product id."),
        ({"items": [{"product_id": 1.0}]}, "items[0].product_id must be a product id."),
        ({"items": [{}]}, "items[0].product_id is required."),
        (
            {"items": [{"product_id": 1, "size": "L"}]},
            "items[0].size is not a cart item field (expected: product_id, quantity).",
        ),
        ({"items": [7]}, "items[0] must be a JSON object."),
        ({"items": {"product_id": 1}}, "items must be a list of {product_id, quantity} objects."),
        (
            {"items": None},
            "items is required and must be a list of {product_id, quantity} objects.",
        ),
        ({"market": "US"}, "market is not a cart field (expected: items)."),
    ],
)
def test_cart_bodies(api: Api, user: User, body: dict[str, Any], message: str) -> None:
    add_product(user)
    assert error_of(api.post("/carts", json=body)) == (400, "invalid_request", message)
    assert db.session.scalar(select(func.count()).select_from(Cart)) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"published": 1}, "published must be true or false."),
        ({"inventory": False}, "inventory must be a non-negative integer."),
        ({"price": "1800"}, "price must be a non-negative integer (minor units)."),
        ({"price": 2**64}, "price must be at most 100000000."),
        ({"name": "   "}, "name is required and must be a non-empty string."),
        ({"name": ["Mug"]}, "name must be a non-empty string."),
        ({"description": "x" * 5001}, "description must be at most 5000 characters."),
        ({"markets": ["US", 3]}, 'markets must be a list of market codes, such as ["US"].'),
        ({"sku": 12}, "sku must be a string or null (unique per merchant)."),
        (
            {"colour": "red", "price": -1},
            "colour is not a product field (expected: name, description, price, currency, "
            "sku, inventory, published, markets).",
        ),
    ],
)
def test_product_updates(api: Api, user: User, change: dict[str, Any], message: str) -> None:
    mug = add_product(user)
    assert error_of(api.patch(f"/admin/products/{mug.id}", json=change)) == (
        400,
        "invalid_request",
        message,
    )
    db.session.expire_all()
    assert db.session.get(Product, mug.id).price == 1800


def test_a_patch_may_clear_the_sku_and_leaves_the_rest(api: Api, user: User) -> None:
    mug = add_product(user, sku="MUG-1")
    body = api.patch(f"/admin/products/{mug.id}", json={"sku": None}).get_json()
    assert (body["sku"], body["name"], body["price"]) == (None, "Enamel mug", 1800)
    body = api.patch(f"/admin/products/{mug.id}", json={"description": None}).get_json()
    assert body["description"] == ""
