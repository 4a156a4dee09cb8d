"""Checkout: a cart becomes a chk_… session, a pending order and a customer, all or nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.store import checkouts
from portal.store import service as store
from portal.store.models import Customer, Order, Product
from tests.factories import TIMESTAMP, Api, add_product, error_of, publishable_token, secret_token


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
        "expires_at": TIMESTAMP,
        "completed_at": None,
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


def test_complete_places_the_order(api: Api, user: User) -> None:
    mug = add_product(user, inventory=5)
    checkout = api.post(
        "/checkouts", json={"cart_id": cart_with(api, (mug.id, 2)), "email": "a@b.test"}
    ).get_json()
    response = api.post(f"/checkouts/{checkout['id']}/complete")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["order"]["status"], body["completed_at"]) == (
        checkout["id"],
        "placed",
        TIMESTAMP,
    )
    assert db.session.get(Product, mug.id).inventory == 3
    # Completing twice is a clash with the checkout's state.
    status, code, message = error_of(api.post(f"/checkouts/{checkout['id']}/complete"))
    assert (status, code) == (409, "conflict")
    assert message == f"Checkout {checkout['id']} is already completed."


def test_a_hoarded_checkout_expires_and_the_stock_returns(
    api: Api, client: FlaskClient, user: User
) -> None:
    mug = add_product(user, inventory=4)
    checkout = api.post(
        "/checkouts", json={"cart_id": cart_with(api, (mug.id, 4)), "email": "h@b.test"}
    ).get_json()
    assert api.get(f"/catalog/products/{mug.id}").get_json()["in_stock"] is False
    assert checkouts.expire_due_checkouts(utcnow() + timedelta(minutes=31)) == 1
    assert api.get(f"/catalog/products/{mug.id}").get_json()["in_stock"] is True
    status, code, message = error_of(api.post(f"/checkouts/{checkout['id']}/complete"))
    assert (status, code) == (409, "conflict")
    assert "expired" in message
    admin = Api(client, secret_token(user))
    assert admin.get(f"/admin/orders/{checkout['order']['id']}").get_json()["status"] == "expired"
    assert [o["id"] for o in admin.get("/admin/orders?status=expired").get_json()["data"]] == [
        checkout["order"]["id"]
    ]


def test_complete_needs_the_checkout_scope_and_the_merchants_checkout(
    api: Api, client: FlaskClient, user: User, other_user: User
) -> None:
    mug = add_product(user)
    checkout_id = api.post(
        "/checkouts", json={"cart_id": cart_with(api, (mug.id, 1)), "email": "a@b.test"}
    ).get_json()["id"]
    browsing = Api(client, publishable_token(user, scopes=["catalog:read", "cart:write"]))
    status, code, message = error_of(browsing.post(f"/checkouts/{checkout_id}/complete"))
    assert (status, code) == (403, "insufficient_scope") and "checkout:create" in message
    stranger = Api(client, publishable_token(other_user))
    for unknown in (checkout_id, "chk_nope", "chk_" + "x" * 60):
        assert error_of(stranger.post(f"/checkouts/{unknown}/complete"))[:2] == (404, "not_found")
    assert db.session.scalar(select(Order.status)) == "pending"
