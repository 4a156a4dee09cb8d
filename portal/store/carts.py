"""Carts: created in the tenant's market, filled with the store's rules on stock and currency."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from portal.database import utcnow
from portal.extensions import db
from portal.store.common import (
    CART_ID_MAX,
    CART_ID_PREFIX,
    CART_LINES_MAX,
    CART_OPEN,
    QUANTITY_MAX,
    TOTAL_MAX,
    CartClosed,
    CartNotFound,
    InvalidField,
    OutOfStock,
    ProductNotFound,
    Tenant,
    random_id,
    transaction,
)
from portal.store.models import Cart, CartItem, Product
from portal.store.products import catalog_of
from portal.store.requests import CartCreate, CartItemCreate


def carts_of(tenant: Tenant) -> Select[tuple[Cart]]:
    """The tenant's carts (its market's only, if it has one), with their lines and products."""
    query = select(Cart).where(Cart.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Cart.market_id == tenant.market_id)
    return query.options(selectinload(Cart.items).selectinload(CartItem.product))


def get_cart(tenant: Tenant, cart_id: str) -> Cart:
    """One cart of the tenant (of its market, if it has one), or CartNotFound."""
    if not cart_id.isprintable() or len(cart_id) > CART_ID_MAX:
        raise CartNotFound("No such cart.")  # e.g. a NUL byte, which PostgreSQL text cannot hold
    cart = db.session.scalar(carts_of(tenant).where(Cart.id == cart_id))
    if cart is None:
        raise CartNotFound(f"No such cart: {cart_id}.")
    return cart


def cart_currency(cart: Cart) -> str | None:
    """The one currency of a cart's items (None while it is empty)."""
    return cart.currency


def cart_total(cart: Cart) -> int:
    """The sum of the cart's lines at today's prices, in minor units."""
    return cart.total


def _add_to_cart(cart: Cart, item: CartItemCreate, prefix: str = "") -> None:
    """Put a quantity of a product in an open cart, checking every rule of the store."""
    product_id, quantity = item.product_id, item.quantity
    if cart.status != CART_OPEN:
        raise CartClosed(f"Cart {cart.id} is checked out and can no longer change.")
    product = db.session.scalar(
        catalog_of(cart.merchant_id, cart.market_id).where(Product.id == product_id)
    )
    if product is None:
        raise ProductNotFound(f"No such product: {prefix}product_id {product_id}.")
    currency = cart.currency
    if currency is not None and product.currency != currency:
        raise InvalidField(
            f"{prefix}product_id",
            f"{prefix}product_id {product_id} is priced in {product.currency} but the cart is "
            f"in {currency}; a cart holds a single currency.",
        )
    line = next((line for line in cart.items if line.product_id == product.id), None)
    if line is None and len(cart.items) >= CART_LINES_MAX:
        raise InvalidField(
            f"{prefix}product_id", f"A cart holds at most {CART_LINES_MAX} different products."
        )
    total_quantity = quantity + (line.quantity if line else 0)
    if total_quantity > QUANTITY_MAX:
        raise InvalidField(
            f"{prefix}quantity",
            f"{prefix}quantity would bring product_id {product_id} to {total_quantity} in the "
            f"cart; the most is {QUANTITY_MAX}.",
        )
    if product.inventory < total_quantity:
        raise OutOfStock(f"{prefix}quantity", product.id, product.inventory)
    if cart.total + product.price * quantity > TOTAL_MAX:
        raise InvalidField(f"{prefix}quantity", f"{prefix}quantity makes the cart total too large.")
    if line is None:
        cart.items.append(CartItem(product=product, product_id=product.id, quantity=quantity))
    else:
        line.quantity = total_quantity
    cart.updated_at = utcnow()


def create_cart(
    tenant: Tenant,
    data: CartCreate | Mapping[str, Any] | None = None,
    customer_id: int | None = None,
) -> Cart:
    """A new open cart in the tenant's market, optionally with items, in one transaction;
    `customer_id`: the signed-in shopper it belongs to."""
    body = CartCreate.parse({} if data is None else data)
    with transaction():
        cart = Cart(
            id=random_id(CART_ID_PREFIX),
            merchant_id=tenant.merchant_id,
            market_id=tenant.market_id,
            customer_id=customer_id,
            status=CART_OPEN,
        )
        db.session.add(cart)
        for index, item in enumerate(body.items):
            _add_to_cart(cart, item, f"items[{index}].")
    return cart


def add_item(tenant: Tenant, cart_id: str, data: CartItemCreate | Mapping[str, Any]) -> Cart:
    """Add a product to a cart (adding one already there raises its quantity)."""
    with transaction():
        cart = get_cart(tenant, cart_id)
        _add_to_cart(cart, CartItemCreate.parse(data))
    return cart
