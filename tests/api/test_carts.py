"""Storefront carts: created in the key's market, items added with the store's rules."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import User
from tests.factories import TIMESTAMP, Api, add_product, error_of, publishable_token


@pytest.fixture
def api(client: FlaskClient, user: User) -> Api:
    """A publishable key for every market."""
    return Api(client, publishable_token(user))


def test_create_an_empty_cart(api: Api) -> None:
    response = api.post("/carts")
    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "id": body["id"],
        "object": "cart",
        "status": "open",
        "market": None,
        "currency": None,
        "items": [],
        "total": 0,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    assert body["id"].startswith("cart_") and len(body["id"]) == 29
    assert response.headers["Location"].endswith(f"/api/v1/carts/{body['id']}")
    assert api.post("/carts", json={}).status_code == 201


def test_create_a_cart_with_items(api: Api, user: User) -> None:
    mug = add_product(user)
    response = api.post("/carts", json={"items": [{"product_id": mug.id, "quantity": 2}]})
    assert response.status_code == 201
    assert response.get_json()["items"] == [
        {
            "product_id": mug.id,
            "name": "Enamel mug",
            "unit_price": 1800,
            "quantity": 2,
            "line_total": 3600,
        }
    ]


def test_add_items_and_read_the_cart(api: Api, user: User) -> None:
    mug = add_product(user)
    pen = add_product(user, name="Pen", price=250)
    cart_id = api.post("/carts").get_json()["id"]
    response = api.post(f"/carts/{cart_id}/items", json={"product_id": mug.id, "quantity": 1})
    assert response.status_code == 200
    api.post(f"/carts/{cart_id}/items", json={"product_id": pen.id, "quantity": 3})
    # Adding a product already in the cart raises its quantity.
    api.post(f"/carts/{cart_id}/items", json={"product_id": mug.id, "quantity": 2})
    response = api.get(f"/carts/{cart_id}")
    assert response.status_code == 200
    assert response.get_json() == {
        "id": cart_id,
        "object": "cart",
        "status": "open",
        "market": None,
        "currency": "USD",
        "items": [
            {
                "product_id": mug.id,
                "name": "Enamel mug",
                "unit_price": 1800,
                "quantity": 3,
                "line_total": 5400,
            },
            {
                "product_id": pen.id,
                "name": "Pen",
                "unit_price": 250,
                "quantity": 3,
                "line_total": 750,
            },
        ],
        "total": 6150,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }


def test_quantity_defaults_to_one(api: Api, user: User) -> None:
    mug = add_product(user)
    cart_id = api.post("/carts").get_json()["id"]
    body = api.post(f"/carts/{cart_id}/items", json={"product_id": mug.id}).get_json()
    assert body["items"][0]["quantity"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "product_id"),
        ({"product_id": "one"}, "product_id"),
        ({"product_id": 1, "quantity": 0}, "quantity"),
        ({"product_id": 1, "quantity": -2}, "quantity"),
        ({"product_id": 1, "quantity": "2"}, "quantity"),
        ({"product_id": 1, "note": "gift"}, "note"),
    ],
)
def test_item_validation_names_the_field(
    api: Api, user: User, body: dict[str, Any], field: str
) -> None:
    cart_id = api.post("/carts").get_json()["id"]
    status, code, message = error_of(api.post(f"/carts/{cart_id}/items", json=body))
    assert (status, code) == (400, "invalid_request")
    assert message.startswith(field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": "mug"}, "items"),
        ({"items": [{"product_id": 1, "quantity": 0}]}, "items[0].quantity"),
        ({"items": [5]}, "items[0]"),
        ({"market": "US"}, "market"),
    ],
)
def test_cart_validation_names_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    status, code, message = error_of(api.post("/carts", json=body))
    assert (status, code) == (400, "invalid_request")
    assert message.startswith(field)


def test_out_of_stock(api: Api, user: User) -> None:
    mug = add_product(user, inventory=2)
    cart_id = api.post("/carts").get_json()["id"]
    api.post(f"/carts/{cart_id}/items", json={"product_id": mug.id, "quantity": 2})
    status, code, message = error_of(
        api.post(f"/carts/{cart_id}/items", json={"product_id": mug.id, "quantity": 1})
    )
    assert (status, code) == (400, "invalid_request")
    assert message == f"quantity: product_id {mug.id} is out of stock (only 2 available)."
    assert api.get(f"/carts/{cart_id}").get_json()["items"][0]["quantity"] == 2


def test_one_currency_per_cart(api: Api, user: User) -> None:
    mug = add_product(user)
    beret = add_product(user, name="Beret", currency="EUR")
    cart_id = api.post("/carts").get_json()["id"]
    api.post(f"/carts/{cart_id}/items", json={"product_id": mug.id})
    status, code, message = error_of(
        api.post(f"/carts/{cart_id}/items", json={"product_id": beret.id})
    )
    assert (status, code) == (400, "invalid_request")
    assert message.startswith(f"product_id {beret.id} is priced in EUR but the cart is in USD")


def test_unpublished_or_unknown_products_cannot_be_added(api: Api, user: User) -> None:
    draft = add_product(user, published=False)
    cart_id = api.post("/carts").get_json()["id"]
    for product_id in (draft.id, 424242):
        status, code, message = error_of(
            api.post(f"/carts/{cart_id}/items", json={"product_id": product_id})
        )
        assert (status, code) == (404, "not_found")
        assert f"product_id {product_id}" in message


def test_unknown_cart(api: Api) -> None:
    for response in (api.get("/carts/cart_nope"), api.post("/carts/cart_nope/items", json={})):
        status, code, _ = error_of(response)
        assert (status, code) == (404, "not_found")


def test_a_market_key_binds_the_cart_to_its_market(client: FlaskClient, user: User) -> None:
    us = accounts.add_market(user.merchant_id, "US", "United States")
    accounts.add_market(user.merchant_id, "EU", "European Union")
    us_only = add_product(user, markets=["US"])
    eu_only = add_product(user, name="Beret", markets=["EU"])
    api = Api(client, publishable_token(user, market_id=us.id))
    cart = api.post("/carts").get_json()
    assert cart["market"] == "US"
    ok = api.post(f"/carts/{cart['id']}/items", json={"product_id": us_only.id})
    assert ok.status_code == 200
    status, code, _ = error_of(
        api.post(f"/carts/{cart['id']}/items", json={"product_id": eu_only.id})
    )
    assert (status, code) == (404, "not_found")


def test_checked_out_cart_cannot_change(api: Api, user: User) -> None:
    mug = add_product(user)
    cart_id = api.post("/carts", json={"items": [{"product_id": mug.id}]}).get_json()["id"]
    assert api.post("/checkouts", json={"cart_id": cart_id, "email": "a@b.test"}).status_code == 201
    status, code, message = error_of(
        api.post(f"/carts/{cart_id}/items", json={"product_id": mug.id})
    )
    assert (status, code) == (400, "invalid_request")
    assert "checked out" in message
    assert api.get(f"/carts/{cart_id}").get_json()["status"] == "checked_out"


def test_body_must_be_json(api: Api) -> None:
    cart_id = api.post("/carts").get_json()["id"]
    response = api.post(
        f"/carts/{cart_id}/items",
        data="product_id=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error_of(response)[:2] == (415, "unsupported_media_type")
    status, code, _ = error_of(
        api.post(f"/carts/{cart_id}/items", data="{", headers={"Content-Type": "application/json"})
    )
    assert (status, code) == (400, "invalid_request")
