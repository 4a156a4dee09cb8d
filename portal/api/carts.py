"""Storefront carts: create one, add products to it, read it back (all under `cart:write`)."""

from __future__ import annotations

from typing import Any

from flask import url_for

from portal.api import bp
from portal.api.auth import require_scope
from portal.api.customers import optional_customer
from portal.api.errors import json_body, parse_body
from portal.api.schemas.carts import Cart, CartCreate
from portal.api.tenancy import current_tenant
from portal.store import carts


@bp.post("/carts")
@require_scope("cart:write")
def create_cart() -> tuple[dict[str, Any], int, dict[str, str]]:
    """A new cart bound to the key's market; the body (optional) may hold `items`."""
    shopper = optional_customer()  # X-Customer-Token: the cart is the shopper's
    customer_id = shopper.customer.id if shopper else None
    cart = carts.create_cart(current_tenant(), parse_body(CartCreate), customer_id=customer_id)
    location = url_for("api.get_cart", cart_id=cart.id)
    return Cart.of(cart).body(), 201, {"Location": location}


@bp.post("/carts/<cart_id>/items")
@require_scope("cart:write")
def add_cart_item(cart_id: str) -> dict[str, Any]:
    """Add `quantity` of `product_id` to the cart; returns the whole cart."""
    # The service parses the body once it has found the cart: an unknown cart is a 404
    # whatever the body says.
    return Cart.of(carts.add_item(current_tenant(), cart_id, json_body())).body()


# Reading a cart needs the same scope as writing it: whoever holds the cart id builds it.
@bp.get("/carts/<cart_id>")
@require_scope("cart:write")
def get_cart(cart_id: str) -> dict[str, Any]:
    """A cart with its lines, line totals, total and currency."""
    return Cart.of(carts.get_cart(current_tenant(), cart_id)).body()
