"""Admin orders: list, read, fulfil and cancel (inventory returned), with state rules."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.extensions import db
from portal.store import service as store
from portal.store.models import Order, Product
from tests.factories import TIMESTAMP, Api, add_product, error_of, secret_token


@pytest.fixture
def api(client: FlaskClient, user: User) -> Api:
    """A secret key with every scope."""
    return Api(client, secret_token(user))


def place_order(user: User, quantity: int = 2, email: str = "ann@example.test") -> Order:
    """A pending order of `quantity` mugs, through the service."""
    tenant = store.Tenant(user.merchant_id)
    mug = add_product(user, inventory=10)
    cart = store.create_cart(tenant, {"items": [{"product_id": mug.id, "quantity": quantity}]})
    return store.checkout(tenant, {"cart_id": cart.id, "email": email}).order


def test_list_and_read_orders(api: Api, user: User) -> None:
    order = place_order(user)
    product_id = order.items[0].product_id
    expected = {
        "id": order.id,
        "object": "order",
        "status": "pending",
        "market": None,
        "customer": {"id": order.customer_id, "email": "ann@example.test"},
        "currency": "USD",
        "items": [
            {
                "product_id": product_id,
                "name": "Enamel mug",
                "unit_price": 1800,
                "quantity": 2,
                "line_total": 3600,
            }
        ],
        "total": 3600,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    assert api.get("/admin/orders").get_json() == {"data": [expected], "has_more": False}
    assert api.get(f"/admin/orders/{order.id}").get_json() == expected
    assert error_of(api.get("/admin/orders/999999"))[:2] == (404, "not_found")


def test_status_filter_and_pagination(api: Api, user: User) -> None:
    first, second, third = (place_order(user) for _ in range(3))
    store.fulfill_order(store.Tenant(user.merchant_id), second.id)
    pending = api.get("/admin/orders?status=pending").get_json()
    assert [o["id"] for o in pending["data"]] == [first.id, third.id]
    page = api.get(f"/admin/orders?limit=1&starting_after={first.id}").get_json()
    assert ([o["id"] for o in page["data"]], page["has_more"]) == ([second.id], True)
    status, code, message = error_of(api.get("/admin/orders?status=shipped"))
    assert (status, code) == (400, "invalid_request")
    assert message == "status must be one of pending, placed, fulfilled, cancelled, expired."


def test_fulfil(api: Api, user: User) -> None:
    order = place_order(user)
    response = api.post(f"/admin/orders/{order.id}/fulfill")
    assert response.status_code == 200
    assert response.get_json()["status"] == "fulfilled"
    for action in ("fulfill", "cancel"):
        status, code, message = error_of(api.post(f"/admin/orders/{order.id}/{action}"))
        assert (status, code) == (409, "conflict")
        verb = "fulfilled" if action == "fulfill" else "cancelled"
        assert message == (
            f"Order {order.id} is fulfilled; only pending or placed orders can be {verb}."
        )


def test_cancel_returns_inventory(api: Api, user: User) -> None:
    order = place_order(user, quantity=3)
    product_id = order.items[0].product_id
    assert db.session.get(Product, product_id).inventory == 7
    response = api.post(f"/admin/orders/{order.id}/cancel")
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert db.session.get(Product, product_id).inventory == 10
    status, code, message = error_of(api.post(f"/admin/orders/{order.id}/cancel"))
    assert (status, code) == (409, "conflict")
    assert message == (
        f"Order {order.id} is cancelled; only pending or placed orders can be cancelled."
    )
    assert db.session.get(Product, product_id).inventory == 10


def test_unknown_orders(api: Api) -> None:
    for action in ("fulfill", "cancel"):
        assert error_of(api.post(f"/admin/orders/424242/{action}"))[:2] == (404, "not_found")
