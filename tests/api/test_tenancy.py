"""Tenancy and scopes: a key sees only its merchant's objects (and its market's), and every
store route needs its scope from the SPEC's table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.api.auth import ROUTE_SCOPES
from portal.extensions import db
from portal.store import service as store
from portal.store.models import Cart, Order, Product
from tests.conftest import make_key
from tests.factories import ALL_SCOPES, Api, add_product, error_of, secret_token

# Every store route, its scope (the SPEC's table) and a request that would succeed with it.
ROUTES = [
    ("GET", "/catalog/products", "catalog:read"),
    ("GET", "/catalog/products/{product}", "catalog:read"),
    ("GET", "/catalog/markets", "catalog:read"),
    ("POST", "/carts", "cart:write"),
    ("POST", "/carts/{cart}/items", "cart:write"),
    ("GET", "/carts/{cart}", "cart:write"),
    ("POST", "/checkouts", "checkout:create"),
    ("GET", "/admin/products", "products:read"),
    ("POST", "/admin/products", "products:write"),
    ("GET", "/admin/products/{product}", "products:read"),
    ("PATCH", "/admin/products/{product}", "products:write"),
    ("DELETE", "/admin/products/{product}", "products:write"),
    ("GET", "/admin/orders", "orders:read"),
    ("GET", "/admin/orders/{order}", "orders:read"),
    ("POST", "/admin/orders/{order}/fulfill", "orders:write"),
    ("POST", "/admin/orders/{order}/cancel", "orders:write"),
    ("GET", "/admin/customers", "customers:read"),
    ("GET", "/admin/usage", "analytics:read"),
]
ENDPOINT_SCOPES = {
    "api.list_catalog_products": "catalog:read",
    "api.get_catalog_product": "catalog:read",
    "api.list_catalog_markets": "catalog:read",
    "api.create_cart": "cart:write",
    "api.add_cart_item": "cart:write",
    "api.get_cart": "cart:write",
    "api.create_checkout": "checkout:create",
    "api.list_products": "products:read",
    "api.get_product": "products:read",
    "api.create_product": "products:write",
    "api.update_product": "products:write",
    "api.delete_product": "products:write",
    "api.list_orders": "orders:read",
    "api.get_order": "orders:read",
    "api.fulfill_order": "orders:write",
    "api.cancel_order": "orders:write",
    "api.list_customers": "customers:read",
    "api.get_usage": "analytics:read",
}


@dataclass
class Shop:
    """One merchant's objects: a product, an open cart holding it, a pending order."""

    product: Product
    cart: Cart
    order: Order

    def path(self, template: str) -> str:
        """A route with this shop's ids in it."""
        return template.format(product=self.product.id, cart=self.cart.id, order=self.order.id)

    def body(self, method: str, template: str) -> dict[str, Any] | None:
        """A body that is valid for this shop's objects."""
        if template == "/carts/{cart}/items":
            return {"product_id": self.product.id, "quantity": 1}
        if template == "/checkouts":
            return {"cart_id": self.cart.id, "email": "a@b.test"}
        if template == "/admin/products" and method == "POST":
            return {"name": "New", "price": 1, "currency": "USD"}
        if method == "PATCH":
            return {"price": 1}
        return None


def open_shop(user: User, market: str | None = None) -> Shop:
    """A product, an open cart and a pending order of the user's merchant (in one market)."""
    markets = [market] if market else []
    tenant_market = accounts.find_market_by_code(user.merchant_id, market) if market else None
    tenant = store.Tenant(user.merchant_id, tenant_market.id if tenant_market else None)
    product = add_product(user, markets=markets, sku=None)
    sold = add_product(user, name="Sold", markets=markets)
    cart = store.create_cart(tenant, {"items": [{"product_id": product.id}]})
    paid = store.create_cart(tenant, {"items": [{"product_id": sold.id}]})
    order = store.checkout(tenant, {"cart_id": paid.id, "email": "a@b.test"}).order
    return Shop(product, cart, order)


def snapshot() -> list[Any]:
    """Everything a refused request must leave as it was."""
    db.session.expire_all()
    return [
        [(p.id, p.name, p.price, p.inventory) for p in db.session.query(Product)],
        [
            (c.id, c.status, [(i.product_id, i.quantity) for i in c.items])
            for c in db.session.query(Cart)
        ],
        [(o.id, o.status) for o in db.session.query(Order)],
    ]


def test_every_store_route_declares_its_scope(app: Flask) -> None:
    assert {e: s for e, s in ROUTE_SCOPES.items() if e in ENDPOINT_SCOPES} == ENDPOINT_SCOPES


OBJECT_ROUTES = [route for route in ROUTES if "{" in route[1]] + [
    ("POST", "/checkouts", "checkout:create")
]


@pytest.mark.parametrize(("method", "template", "scope"), OBJECT_ROUTES)
def test_another_merchants_objects_are_not_found(
    client: FlaskClient, user: User, other_user: User, method: str, template: str, scope: str
) -> None:
    theirs = open_shop(user)
    mine = open_shop(other_user)
    intruder = Api(client, secret_token(other_user, scopes=ALL_SCOPES))
    before = snapshot()
    response = intruder.call(method, theirs.path(template), theirs.body(method, template))
    assert error_of(response)[:2] == (404, "not_found"), (method, template)
    assert before == snapshot()
    # The same request on the intruder's own objects works: the 404 is about ownership.
    response = intruder.call(method, mine.path(template), mine.body(method, template))
    assert response.status_code < 300, response.get_json()


def test_lists_hold_only_the_merchants_objects(
    client: FlaskClient, user: User, other_user: User
) -> None:
    open_shop(user)
    accounts.add_market(user.merchant_id, "US", "United States")
    mine = open_shop(other_user)
    intruder = Api(client, secret_token(other_user, scopes=ALL_SCOPES))
    my_products = {mine.product.id, mine.order.items[0].product_id}
    for path, expected in (
        ("/catalog/products", my_products),
        ("/catalog/markets", set()),
        ("/admin/products", my_products),
        ("/admin/orders", {mine.order.id}),
        ("/admin/customers", {mine.order.customer_id}),
    ):
        assert {item["id"] for item in intruder.get(path).get_json()["data"]} == expected, path


def test_another_merchants_product_cannot_go_in_a_cart(
    client: FlaskClient, user: User, other_user: User
) -> None:
    theirs = add_product(user)
    intruder = Api(client, secret_token(other_user, scopes=ALL_SCOPES))
    cart_id = intruder.post("/carts").get_json()["id"]
    status, code, _ = error_of(
        intruder.post(f"/carts/{cart_id}/items", json={"product_id": theirs.id})
    )
    assert (status, code) == (404, "not_found")
    status, code, _ = error_of(intruder.post("/carts", json={"items": [{"product_id": theirs.id}]}))
    assert (status, code) == (404, "not_found")


def test_usage_shows_only_the_merchants_keys(
    client: FlaskClient, user: User, other_user: User
) -> None:
    make_key(user, "publishable", label="Theirs")
    mine, token = make_key(other_user, "secret", label="Mine", scopes=ALL_SCOPES)
    body = Api(client, token).get("/admin/usage").get_json()
    assert [key["id"] for key in body["keys"]] == [mine.id]
    assert body["sales"]["orders"] == {
        "pending": 0,
        "placed": 0,
        "fulfilled": 0,
        "cancelled": 0,
        "expired": 0,
    }


@pytest.fixture
def markets(user: User) -> dict[str, Any]:
    """US and EU markets of the user's merchant."""
    return {
        code: accounts.add_market(user.merchant_id, code, name)
        for code, name in (("US", "United States"), ("EU", "European Union"))
    }


MARKET_BOUND_ROUTES = [route for route in ROUTES if "{" in route[1] or route[1] == "/checkouts"]


@pytest.mark.parametrize(("method", "template", "scope"), MARKET_BOUND_ROUTES)
def test_a_market_key_cannot_reach_another_markets_objects(
    client: FlaskClient,
    user: User,
    markets: dict[str, Any],
    method: str,
    template: str,
    scope: str,
) -> None:
    us_shop = open_shop(user, "US")
    eu_key = Api(client, secret_token(user, scopes=ALL_SCOPES, market_id=markets["EU"].id))
    before = snapshot()
    response = eu_key.call(method, us_shop.path(template), us_shop.body(method, template))
    assert error_of(response)[:2] == (404, "not_found"), (method, template)
    assert before == snapshot()
    us_key = Api(client, secret_token(user, scopes=ALL_SCOPES, market_id=markets["US"].id))
    response = us_key.call(method, us_shop.path(template), us_shop.body(method, template))
    assert response.status_code < 300, response.get_json()


def test_a_market_key_lists_only_its_market(
    client: FlaskClient, user: User, markets: dict[str, Any]
) -> None:
    us_shop = open_shop(user, "US")
    eu_shop = open_shop(user, "EU")
    eu_key = Api(client, secret_token(user, scopes=ALL_SCOPES, market_id=markets["EU"].id))
    for path, expected in (
        ("/catalog/products", {eu_shop.product.id, eu_shop.order.items[0].product_id}),
        ("/admin/products", {eu_shop.product.id, eu_shop.order.items[0].product_id}),
        ("/admin/orders", {eu_shop.order.id}),
        ("/admin/customers", {eu_shop.order.customer_id}),
    ):
        assert {item["id"] for item in eu_key.get(path).get_json()["data"]} == expected, path
    assert us_shop.order.customer_id == eu_shop.order.customer_id  # one shopper, both markets


@pytest.mark.parametrize(("method", "template", "scope"), ROUTES)
def test_each_route_needs_its_scope(
    client: FlaskClient, user: User, method: str, template: str, scope: str
) -> None:
    shop = open_shop(user)
    lacking = Api(client, secret_token(user, scopes=[s for s in ALL_SCOPES if s != scope]))
    before = snapshot()
    response = lacking.call(method, shop.path(template), shop.body(method, template))
    status, code, message = error_of(response)
    assert (status, code) == (403, "insufficient_scope")
    assert scope in message
    assert f'scope="{scope}"' in response.headers["WWW-Authenticate"]
    assert before == snapshot()
    allowed = Api(client, secret_token(user, scopes=[scope]))
    assert allowed.call(method, shop.path(template), shop.body(method, template)).status_code < 300


@pytest.mark.parametrize(
    ("method", "template", "scope"), [route for route in ROUTES if route[1].startswith("/admin")]
)
def test_publishable_keys_cannot_use_the_admin_api(
    client: FlaskClient, user: User, method: str, template: str, scope: str
) -> None:
    shop = open_shop(user)
    storefront = Api(client, make_key(user, "publishable")[1])
    response = storefront.call(method, shop.path(template), shop.body(method, template))
    assert error_of(response)[:2] == (403, "insufficient_scope")


def test_x_site_id_narrows_a_tenant_key_to_one_market(
    client: FlaskClient, user: User, markets: dict[str, Any]
) -> None:
    us_shop = open_shop(user, "US")
    api = Api(client, secret_token(user, scopes=ALL_SCOPES))
    eu = {"X-Site-ID": "EU"}
    assert error_of(api.get(f"/catalog/products/{us_shop.product.id}", headers=eu))[:2] == (
        404,
        "not_found",
    )
    assert error_of(api.get(f"/carts/{us_shop.cart.id}", headers=eu))[:2] == (404, "not_found")
    assert api.get("/admin/orders", headers=eu).get_json()["data"] == []
    cart = api.post("/carts", headers=eu).get_json()
    assert cart["market"] == "EU"
    us = {"X-Site-ID": "US"}
    assert api.get(f"/admin/orders/{us_shop.order.id}", headers=us).status_code == 200
