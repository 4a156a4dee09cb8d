"""Checkout: a cart becomes a chk_… session, a pending order and a customer, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.extensions import db
from portal.store import service as store
from portal.store.models import Customer, Order, Product
from tests.factories import TIMESTAMP, Api, add_product, error_of, publishable_token


@pytest.fixture
def api(client: FlaskClient, user: User) -> Api:
    """A publishable key for every market."""
    return Api(client, publishable_token(user))


def rows(model: type) -> int:
    """How many rows a table has."""
    return db.session.scalar(select(func.count()).select_from(model))


def cart_with(api: Api, *lines: tuple[int, int]) -> str:
    """A new cart holding (product_id, quantity) lines; returns its id."""
    items = [{"product_id": product_id, "quantity": quantity} for product_id, quantity in lines]
    response = api.post("/carts", json={"items": items})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_checkout(api: Api, user: User) -> None:
    mug = add_product(user, inventory=5)
    cart_id = cart_with(api, (mug.id, 2))
    response = api.post("/checkouts", json={"cart_id": cart_id, "email": "Ann@Example.test"})
    assert response.status_code == 201
    body = response.get_json()
    order_id = db.session.scalar(select(Order.id))
    customer_id = db.session.scalar(select(Customer.id))
    assert body == {
        "id": body["id"],
        "object": "checkout_session",
        "cart_id": cart_id,
        "email": "ann@example.test",
        "order": {
            "id": order_id,
            "object": "order",
            "status": "pending",
            "market": None,
            "customer": {"id": customer_id, "email": "ann@example.test"},
            "currency": "USD",
            "items": [
                {
                    "product_id": mug.id,
                    "name": "Enamel mug",
                    "unit_price": 1800,
                    "quantity": 2,
                    "line_total": 3600,
                }
            ],
            "total": 3600,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        "created_at": TIMESTAMP,
    }
    assert body["id"].startswith("chk_")
    assert db.session.get(Product, mug.id).inventory == 3
    assert api.get(f"/carts/{cart_id}").get_json()["status"] == "checked_out"


def test_a_cart_is_checked_out_once(api: Api, user: User) -> None:
    mug = add_product(user)
    cart_id = cart_with(api, (mug.id, 1))
    assert api.post("/checkouts", json={"cart_id": cart_id, "email": "a@b.test"}).status_code == 201
    status, code, message = error_of(
        api.post("/checkouts", json={"cart_id": cart_id, "email": "a@b.test"})
    )
    assert (status, code) == (400, "invalid_request")
    assert "already checked out" in message
    assert rows(Order) == 1


def test_failed_checkout_leaves_everything_untouched(api: Api, user: User) -> None:
    mug = add_product(user, inventory=5)
    pen = add_product(user, name="Pen", inventory=5)
    cart_id = cart_with(api, (mug.id, 2), (pen.id, 4))
    # The pens sell out elsewhere after they went in the cart: the second line fails.
    store.update_product(store.Tenant(user.merchant_id), pen.id, {"inventory": 1})
    status, code, message = error_of(
        api.post("/checkouts", json={"cart_id": cart_id, "email": "a@b.test"})
    )
    assert (status, code) == (400, "invalid_request")
    assert f"product_id {pen.id} is out of stock" in message
    assert db.session.get(Product, mug.id).inventory == 5
    assert db.session.get(Product, pen.id).inventory == 1
    assert (rows(Order), rows(Customer)) == (0, 0)
    assert api.get(f"/carts/{cart_id}").get_json()["status"] == "open"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@b.test"}, "cart_id"),
        ({"cart_id": 12, "email": "a@b.test"}, "cart_id"),
        ({"cart_id": "cart_x"}, "email"),
        ({"cart_id": "cart_x", "email": "nobody"}, "email"),
        ({"cart_id": "cart_x", "email": "a@b.test", "coupon": "FREE"}, "coupon"),
    ],
)
def test_validation_names_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    status, code, message = error_of(api.post("/checkouts", json=body))
    assert (status, code) == (400, "invalid_request")
    assert message.startswith(field)


def test_empty_and_unknown_carts(api: Api) -> None:
    cart_id = api.post("/carts").get_json()["id"]
    status, code, message = error_of(
        api.post("/checkouts", json={"cart_id": cart_id, "email": "a@b.test"})
    )
    assert (status, code) == (400, "invalid_request")
    assert message.startswith("cart_id") and "empty" in message
    status, code, _ = error_of(
        api.post("/checkouts", json={"cart_id": "cart_unknown", "email": "a@b.test"})
    )
    assert (status, code) == (404, "not_found")


def test_returning_customers_are_found_by_email(api: Api, user: User) -> None:
    mug = add_product(user)
    first = api.post(
        "/checkouts", json={"cart_id": cart_with(api, (mug.id, 1)), "email": "a@b.test"}
    )
    second = api.post(
        "/checkouts", json={"cart_id": cart_with(api, (mug.id, 1)), "email": " A@B.TEST "}
    )
    assert first.get_json()["order"]["customer"] == second.get_json()["order"]["customer"]
    assert rows(Customer) == 1
