"""Admin customers and usage: customers by id, keys with their last use, sales figures."""

from __future__ import annotations

from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import ApiKey
from portal.store import service as store
from portal.store.models import Customer
from tests.conftest import make_key
from tests.factories import TIMESTAMP, Api, add_product, error_of, secret_token


def checkout(user: User, email: str, quantity: int = 1) -> int:
    """Buy mugs as `email`; returns the order id."""
    tenant = store.Tenant(user.merchant_id)
    mug = add_product(user)
    cart = store.create_cart(tenant, {"items": [{"product_id": mug.id, "quantity": quantity}]})
    return store.checkout(tenant, {"cart_id": cart.id, "email": email}).order.id


def test_customers(client: FlaskClient, user: User) -> None:
    for email in ("b@example.test", "a@example.test", "c@example.test"):
        checkout(user, email)
    api = Api(client, secret_token(user))
    ids = [c.id for c in db.session.query(Customer).order_by(Customer.id)]
    first = api.get("/admin/customers?limit=2").get_json()
    assert first == {
        "data": [
            {
                "id": ids[0],
                "object": "customer",
                "email": "b@example.test",
                "created_at": TIMESTAMP,
            },
            {
                "id": ids[1],
                "object": "customer",
                "email": "a@example.test",
                "created_at": TIMESTAMP,
            },
        ],
        "has_more": True,
    }
    rest = api.get(f"/admin/customers?starting_after={ids[1]}").get_json()
    assert ([c["email"] for c in rest["data"]], rest["has_more"]) == (["c@example.test"], False)
    assert error_of(api.get("/admin/customers?starting_after=x"))[:2] == (400, "invalid_request")


def test_usage(client: FlaskClient, user: User) -> None:
    tenant = store.Tenant(user.merchant_id)
    cancelled = checkout(user, "a@example.test", 2)
    store.cancel_order(tenant, cancelled)
    store.fulfill_order(tenant, checkout(user, "b@example.test", 1))
    checkout(user, "c@example.test", 3)
    token = secret_token(user, label="Reports")
    storefront, _ = make_key(user, "publishable", label="Storefront")
    api = Api(client, token)
    response = api.get("/admin/usage")
    assert response.status_code == 200
    body = response.get_json()
    reports = db.session.query(ApiKey).filter_by(label="Reports").one()
    assert body["object"] == "usage"
    assert [key["id"] for key in body["keys"]] == [reports.id, storefront.id]
    storefront_row = dict(body["keys"][1])
    assert storefront_row.pop("usage")["total_calls"] == 0
    assert storefront_row == {
        "id": storefront.id,
        "label": "Storefront",
        "type": "publishable",
        "state": "active",
        "last_used_at": None,
    }
    assert body["sales"] == {
        "orders": {"pending": 1, "placed": 0, "fulfilled": 1, "cancelled": 1, "expired": 0},
        "revenue": [
            {
                "currency": "USD",
                "pending": 5400,
                "placed": 0,
                "fulfilled": 1800,
                "cancelled": 3600,
                "expired": 0,
            }
        ],
    }
