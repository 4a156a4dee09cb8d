"""The store service on a real database session: rules, tenancy, transactions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.store import service as store
from portal.store.models import Cart, Customer, Order, Product


@pytest.fixture
def tenant(user: User) -> store.Tenant:
    """The user's merchant, every market."""
    return store.Tenant(user.merchant_id)


@pytest.fixture
def markets(user: User) -> dict[str, Any]:
    """Two markets of the user's merchant, by code."""
    return {
        "US": accounts.add_market(user.merchant_id, "US", "United States"),
        "EU": accounts.add_market(user.merchant_id, "EU", "European Union"),
    }


def product(tenant: store.Tenant, **fields: Any) -> Product:
    """A published product through the service."""
    body = {"name": "Mug", "price": 1200, "currency": "usd", "inventory": 10, "published": True}
    body.update(fields)
    return store.create_product(tenant, body)


def count(model: type) -> int:
    """Rows of a table."""
    return db.session.scalar(select(func.count()).select_from(model))


# -- products -------------------------------------------------------------------------------


def test_create_product_normalises(tenant: store.Tenant, markets: dict[str, Any]) -> None:
    created = product(tenant, name="  Mug  ", sku=" MUG-1 ", markets=["us", "EU", "US"])
    assert created.id is not None
    assert created.name == "Mug"
    assert created.currency == "USD"
    assert created.sku == "MUG-1"
    assert store.market_codes(created) == ["EU", "US"]


def test_create_product_defaults(tenant: store.Tenant) -> None:
    created = store.create_product(tenant, {"name": "Pen", "price": 0, "currency": "EUR"})
    assert (created.description, created.sku, created.inventory, created.published) == (
        "",
        None,
        0,
        False,
    )
    assert created.markets == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"price": 1, "currency": "USD"}, "name", "name is required."),
        ({"name": "", "price": 1, "currency": "USD"}, "name", "name is required and must"),
        ({"name": "x" * 201, "price": 1, "currency": "USD"}, "name", "at most 200"),
        ({"name": 5, "price": 1, "currency": "USD"}, "name", "non-empty string"),
        ({"name": "A", "currency": "USD"}, "price", "price is required."),
        ({"name": "A", "price": -1, "currency": "USD"}, "price", "price must be a non-negative"),
        ({"name": "A", "price": 1.5, "currency": "USD"}, "price", "non-negative integer"),
        ({"name": "A", "price": "100", "currency": "USD"}, "price", "non-negative integer"),
        ({"name": "A", "price": True, "currency": "USD"}, "price", "non-negative integer"),
        ({"name": "A", "price": 10**9, "currency": "USD"}, "price", "at most"),
        ({"name": "A", "price": 1}, "currency", "currency is required."),
        ({"name": "A", "price": 1, "currency": "US"}, "currency", "three-letter"),
        ({"name": "A", "price": 1, "currency": "US1"}, "currency", "three-letter"),
        ({"name": "A", "price": 1, "currency": "USD", "inventory": -3}, "inventory", "inventory"),
        ({"name": "A", "price": 1, "currency": "USD", "inventory": "3"}, "inventory", "integer"),
        ({"name": "A", "price": 1, "currency": "USD", "published": "yes"}, "published", "true"),
        ({"name": "A", "price": 1, "currency": "USD", "description": 3}, "description", "string"),
        ({"name": "A", "price": 1, "currency": "USD", "sku": 12}, "sku", "sku must be"),
        ({"name": "A", "price": 1, "currency": "USD", "sku": "x" * 65}, "sku", "at most 64"),
        ({"name": "A", "price": 1, "currency": "USD", "markets": "US"}, "markets", "list"),
        ({"name": "A", "price": 1, "currency": "USD", "markets": ["XX"]}, "markets", "'XX'"),
        ({"name": "A", "price": 1, "currency": "USD", "colour": "red"}, "colour", "not a product"),
    ],
)
def test_product_validation(
    tenant: store.Tenant, markets: dict[str, Any], body: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(store.InvalidField) as raised:
        store.create_product(tenant, body)
    assert raised.value.field == field
    assert field in raised.value.message
    assert message in raised.value.message
    assert count(Product) == 0


def test_sku_is_unique_per_merchant(tenant: store.Tenant, other_user: User) -> None:
    product(tenant, sku="MUG")
    with pytest.raises(store.InvalidField) as raised:
        product(tenant, sku="MUG")
    assert raised.value.field == "sku"
    # Another merchant may use the same SKU.
    product(store.Tenant(other_user.merchant_id), sku="MUG")


def test_update_product_is_partial(tenant: store.Tenant, markets: dict[str, Any]) -> None:
    created = product(tenant, sku="A", markets=["US"])
    updated = store.update_product(tenant, created.id, {"price": 1500, "markets": ["EU"]})
    assert (updated.name, updated.price, updated.sku) == ("Mug", 1500, "A")
    assert store.market_codes(updated) == ["EU"]
    # Keeping its own SKU is not a clash.
    store.update_product(tenant, created.id, {"sku": "A"})


def test_failed_update_changes_nothing(tenant: store.Tenant) -> None:
    created = product(tenant)
    with pytest.raises(store.InvalidField):
        store.update_product(tenant, created.id, {"name": "New", "price": -1})
    assert db.session.get(Product, created.id).name == "Mug"


def test_delete_product_keeps_orders(tenant: store.Tenant) -> None:
    mug = product(tenant)
    cart = store.create_cart(tenant, {"items": [{"product_id": mug.id, "quantity": 1}]})
    result = store.checkout(tenant, {"cart_id": cart.id, "email": "a@b.test"})
    store.delete_product(tenant, mug.id)
    assert count(Product) == 0
    order = store.get_order(tenant, result.order.id)
    assert order.items[0].product_id is None
    assert order.items[0].name == "Mug"
    with pytest.raises(store.ProductNotFound):
        store.get_product(tenant, mug.id)


def test_products_belong_to_their_merchant(tenant: store.Tenant, other_user: User) -> None:
    mug = product(tenant)
    other = store.Tenant(other_user.merchant_id)
    for call in (
        lambda: store.get_product(other, mug.id),
        lambda: store.get_catalog_product(other, mug.id),
        lambda: store.update_product(other, mug.id, {"price": 1}),
        lambda: store.delete_product(other, mug.id),
    ):
        with pytest.raises(store.ProductNotFound):
            call()
    assert store.list_products(other).items == []


def test_catalog_shows_published_products_of_the_market(
    tenant: store.Tenant, markets: dict[str, Any]
) -> None:
    us_only = product(tenant, name="US", markets=["US"])
    both = product(tenant, name="Both", markets=["US", "EU"])
    product(tenant, name="Draft", published=False, markets=["US", "EU"])
    nowhere = product(tenant, name="Nowhere")
    eu = store.Tenant(tenant.merchant_id, markets["EU"].id)
    assert [p.id for p in store.list_catalog(eu).items] == [both.id]
    assert [p.id for p in store.list_catalog(tenant).items] == [us_only.id, both.id, nowhere.id]
    with pytest.raises(store.ProductNotFound):
        store.get_catalog_product(eu, us_only.id)


def test_pagination(tenant: store.Tenant) -> None:
    ids = [product(tenant, name=f"P{n}").id for n in range(5)]
    first = store.list_products(tenant, limit=2)
    assert [p.id for p in first.items] == ids[:2] and first.has_more
    last = store.list_products(tenant, limit=3, starting_after=ids[1])
    assert [p.id for p in last.items] == ids[2:] and not last.has_more


def test_market_scoped_product_writes(tenant: store.Tenant, markets: dict[str, Any]) -> None:
    eu = store.Tenant(tenant.merchant_id, markets["EU"].id)
    created = store.create_product(eu, {"name": "Beret", "price": 900, "currency": "EUR"})
    assert store.market_codes(created) == ["EU"]
    with pytest.raises(store.InvalidField, match="unknown market code: 'US'"):
        store.create_product(eu, {"name": "X", "price": 1, "currency": "EUR", "markets": ["US"]})
    with pytest.raises(store.InvalidField, match="must include EU"):
        store.update_product(eu, created.id, {"markets": []})
    # A product the EU shares with the US is not the EU key's alone to change or delete.
    both = product(tenant, markets=["US", "EU"])
    for write in (
        lambda: store.update_product(eu, both.id, {"markets": ["EU"]}),
        lambda: store.update_product(eu, both.id, {"price": 1}),
        lambda: store.delete_product(eu, both.id),
    ):
        with pytest.raises(store.OtherMarketsAffected, match="also sold in US") as refused:
            write()
        assert refused.value.markets == ["US"]
    unchanged = db.session.get(Product, both.id)
    assert (store.market_codes(unchanged), unchanged.price) == (["EU", "US"], 1200)
    # What is the EU's alone, the EU key may change and delete.
    store.update_product(eu, created.id, {"price": 950})
    store.delete_product(eu, created.id)
    us_only = product(tenant, markets=["US"])
    with pytest.raises(store.ProductNotFound):
        store.get_product(eu, us_only.id)


# -- carts ----------------------------------------------------------------------------------


def test_adding_an_existing_product_raises_its_quantity(tenant: store.Tenant) -> None:
    mug = product(tenant)
    cart = store.create_cart(tenant)
    assert cart.id.startswith("cart_") and cart.status == "open"
    store.add_item(tenant, cart.id, {"product_id": mug.id, "quantity": 2})
    cart = store.add_item(tenant, cart.id, {"product_id": mug.id, "quantity": 3})
    assert [(item.product_id, item.quantity) for item in cart.items] == [(mug.id, 5)]
    assert store.cart_total(cart) == 6000
    assert store.cart_currency(cart) == "USD"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "product_id"),
        ({"product_id": "1"}, "product_id"),
        ({"product_id": 2**31}, "product_id"),
        ({"product_id": 1, "quantity": 0}, "quantity"),
        ({"product_id": 1, "quantity": 1001}, "quantity"),
        ({"product_id": 1, "quantity": 1.0}, "quantity"),
        ({"product_id": 1, "size": "L"}, "size"),
    ],
)
def test_item_validation(tenant: store.Tenant, body: dict[str, Any], field: str) -> None:
    cart = store.create_cart(tenant)
    with pytest.raises(store.InvalidField) as raised:
        store.add_item(tenant, cart.id, body)
    assert raised.value.field == field
    assert field in raised.value.message


def test_cart_rules(tenant: store.Tenant, markets: dict[str, Any]) -> None:
    mug = product(tenant, inventory=3, markets=["US"])
    euro = product(tenant, currency="EUR", markets=["US"])
    draft = product(tenant, published=False)
    eu_only = product(tenant, markets=["EU"])
    us = store.Tenant(tenant.merchant_id, markets["US"].id)
    cart = store.create_cart(us)
    assert cart.market_id == markets["US"].id
    store.add_item(us, cart.id, {"product_id": mug.id, "quantity": 2})
    with pytest.raises(store.OutOfStock) as raised:
        store.add_item(us, cart.id, {"product_id": mug.id, "quantity": 2})
    assert raised.value.field == "quantity" and "only 3 available" in raised.value.message
    with pytest.raises(store.InvalidField, match="priced in EUR but the cart is in USD") as mixed:
        store.add_item(us, cart.id, {"product_id": euro.id})
    assert mixed.value.field == "product_id"
    for hidden in (draft.id, eu_only.id, 999_999):
        with pytest.raises(store.ProductNotFound, match="product_id"):
            store.add_item(us, cart.id, {"product_id": hidden})
    assert [(i.product_id, i.quantity) for i in store.get_cart(us, cart.id).items] == [(mug.id, 2)]


def test_create_cart_with_items_is_all_or_nothing(tenant: store.Tenant) -> None:
    mug = product(tenant, inventory=1)
    with pytest.raises(store.OutOfStock) as raised:
        store.create_cart(tenant, {"items": [{"product_id": mug.id, "quantity": 2}]})
    assert raised.value.field == "items[0].quantity"
    assert count(Cart) == 0


def test_carts_are_tenant_and_market_bound(
    tenant: store.Tenant, markets: dict[str, Any], other_user: User
) -> None:
    us = store.Tenant(tenant.merchant_id, markets["US"].id)
    eu = store.Tenant(tenant.merchant_id, markets["EU"].id)
    cart = store.create_cart(us)
    assert store.get_cart(tenant, cart.id).id == cart.id
    for stranger in (eu, store.Tenant(other_user.merchant_id)):
        with pytest.raises(store.CartNotFound):
            store.get_cart(stranger, cart.id)


# -- checkouts ------------------------------------------------------------------------------


def test_checkout_reserves_stock_and_creates_a_pending_order(tenant: store.Tenant) -> None:
    mug = product(tenant, inventory=5)
    pen = product(tenant, name="Pen", price=250, inventory=2)
    cart = store.create_cart(
        tenant,
        {"items": [{"product_id": mug.id, "quantity": 2}, {"product_id": pen.id, "quantity": 2}]},
    )
    result = store.checkout(tenant, {"cart_id": cart.id, "email": " Ann@Example.TEST "})
    assert result.session.id.startswith("chk_")
    assert result.customer.email == "ann@example.test"
    order = result.order
    assert (order.status, order.currency, order.total) == ("pending", "USD", 2 * 1200 + 2 * 250)
    assert [(i.name, i.unit_price, i.quantity) for i in order.items] == [
        ("Mug", 1200, 2),
        ("Pen", 250, 2),
    ]
    assert db.session.get(Product, mug.id).inventory == 3
    assert db.session.get(Product, pen.id).inventory == 0
    assert store.get_cart(tenant, cart.id).status == "checked_out"
    with pytest.raises(store.CartClosed):
        store.add_item(tenant, cart.id, {"product_id": mug.id})
    with pytest.raises(store.CartClosed):
        store.checkout(tenant, {"cart_id": cart.id, "email": "ann@example.test"})


def test_checkout_finds_the_customer_by_email(tenant: store.Tenant) -> None:
    mug = product(tenant)
    for email in ("ann@example.test", "ANN@example.test"):
        cart = store.create_cart(tenant, {"items": [{"product_id": mug.id}]})
        store.checkout(tenant, {"cart_id": cart.id, "email": email})
    assert count(Customer) == 1
    assert count(Order) == 2


def test_failed_checkout_changes_nothing(tenant: store.Tenant) -> None:
    mug = product(tenant, inventory=5)
    pen = product(tenant, name="Pen", inventory=5)
    cart = store.create_cart(
        tenant,
        {"items": [{"product_id": mug.id, "quantity": 2}, {"product_id": pen.id, "quantity": 4}]},
    )
    # Someone else buys pens meanwhile: the second line can no longer be reserved.
    store.update_product(tenant, pen.id, {"inventory": 3})
    with pytest.raises(store.OutOfStock) as raised:
        store.checkout(tenant, {"cart_id": cart.id, "email": "ann@example.test"})
    assert raised.value.product_id == pen.id and raised.value.field == "cart_id"
    assert db.session.get(Product, mug.id).inventory == 5
    assert db.session.get(Product, pen.id).inventory == 3
    assert (count(Order), count(Customer)) == (0, 0)
    assert store.get_cart(tenant, cart.id).status == "open"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@b.test"}, "cart_id"),
        ({"cart_id": 5, "email": "a@b.test"}, "cart_id"),
        ({"cart_id": "cart_x"}, "email"),
        ({"cart_id": "cart_x", "email": "not-an-email"}, "email"),
        ({"cart_id": "cart_x", "email": "a@b.test", "coupon": "X"}, "coupon"),
    ],
)
def test_checkout_validation(tenant: store.Tenant, body: dict[str, Any], field: str) -> None:
    with pytest.raises(store.InvalidField) as raised:
        store.checkout(tenant, body)
    assert raised.value.field == field


def test_checkout_of_an_empty_or_unknown_cart(tenant: store.Tenant) -> None:
    cart = store.create_cart(tenant)
    with pytest.raises(store.InvalidField, match="empty"):
        store.checkout(tenant, {"cart_id": cart.id, "email": "a@b.test"})
    with pytest.raises(store.CartNotFound):
        store.checkout(tenant, {"cart_id": "cart_nope", "email": "a@b.test"})


def test_checkout_refuses_an_unpublished_product(tenant: store.Tenant) -> None:
    mug = product(tenant)
    cart = store.create_cart(tenant, {"items": [{"product_id": mug.id}]})
    store.update_product(tenant, mug.id, {"published": False})
    with pytest.raises(store.InvalidField, match=f"product_id {mug.id}"):
        store.checkout(tenant, {"cart_id": cart.id, "email": "a@b.test"})
    assert db.session.get(Product, mug.id).inventory == 10


# -- orders ---------------------------------------------------------------------------------


def _order(tenant: store.Tenant, quantity: int = 2) -> tuple[Order, Product]:
    mug = product(tenant, inventory=10)
    cart = store.create_cart(tenant, {"items": [{"product_id": mug.id, "quantity": quantity}]})
    return store.checkout(tenant, {"cart_id": cart.id, "email": "a@b.test"}).order, mug


def test_cancel_returns_inventory(tenant: store.Tenant) -> None:
    order, mug = _order(tenant, 4)
    assert db.session.get(Product, mug.id).inventory == 6
    cancelled = store.cancel_order(tenant, order.id)
    assert cancelled.status == "cancelled"
    assert db.session.get(Product, mug.id).inventory == 10
    with pytest.raises(store.OrderStateError, match="is cancelled; only pending"):
        store.cancel_order(tenant, order.id)
    with pytest.raises(store.OrderStateError):
        store.fulfill_order(tenant, order.id)
    assert db.session.get(Product, mug.id).inventory == 10


def test_fulfil_state_rules(tenant: store.Tenant) -> None:
    order, mug = _order(tenant)
    assert store.fulfill_order(tenant, order.id).status == "fulfilled"
    with pytest.raises(
        store.OrderStateError, match="is fulfilled; only pending or placed orders can be"
    ):
        store.cancel_order(tenant, order.id)
    with pytest.raises(store.OrderStateError):
        store.fulfill_order(tenant, order.id)
    assert db.session.get(Product, mug.id).inventory == 8


def test_orders_filter_and_tenancy(tenant: store.Tenant, other_user: User) -> None:
    first, _ = _order(tenant)
    second, _ = _order(tenant)
    store.fulfill_order(tenant, second.id)
    assert [o.id for o in store.list_orders(tenant, status="pending").items] == [first.id]
    assert [o.id for o in store.list_orders(tenant).items] == [first.id, second.id]
    with pytest.raises(store.InvalidField, match="status must be one of"):
        store.list_orders(tenant, status="shipped")
    other = store.Tenant(other_user.merchant_id)
    for call in (store.get_order, store.fulfill_order, store.cancel_order):
        with pytest.raises(store.OrderNotFound):
            call(other, first.id)


def test_market_scoped_orders_and_customers(tenant: store.Tenant, markets: dict[str, Any]) -> None:
    us = store.Tenant(tenant.merchant_id, markets["US"].id)
    eu = store.Tenant(tenant.merchant_id, markets["EU"].id)
    mug = product(tenant, markets=["US"])
    cart = store.create_cart(us, {"items": [{"product_id": mug.id}]})
    order = store.checkout(us, {"cart_id": cart.id, "email": "us@b.test"}).order
    assert order.market_id == markets["US"].id
    with pytest.raises(store.OrderNotFound):
        store.get_order(eu, order.id)
    assert store.list_orders(eu).items == []
    assert store.list_customers(eu).items == []
    assert [c.email for c in store.list_customers(us).items] == ["us@b.test"]
    assert store.sales_figures(eu)["orders"] == {
        "pending": 0,
        "placed": 0,
        "fulfilled": 0,
        "cancelled": 0,
        "expired": 0,
    }


def test_sales_figures(tenant: store.Tenant) -> None:
    first, _ = _order(tenant)
    _order(tenant, 1)
    store.cancel_order(tenant, first.id)
    assert store.sales_figures(tenant) == {
        "orders": {"pending": 1, "placed": 0, "fulfilled": 0, "cancelled": 1, "expired": 0},
        "revenue": [
            {
                "currency": "USD",
                "pending": 1200,
                "placed": 0,
                "fulfilled": 0,
                "cancelled": 2400,
                "expired": 0,
            }
        ],
    }
