"""The bridge between the API and the store service: JSON shapes of store objects, the caller's
tenant, and store errors turned into the API's JSON errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response

from portal.accounts.models import Market
from portal.api import bp
from portal.api.auth import current_key
from portal.api.errors import ApiError, error_response
from portal.store import service as store
from portal.store.models import Cart, CartItem, Customer, Order, OrderItem, Product


def current_tenant() -> store.Tenant:
    """Whose data the calling key sees: its merchant, and its effective market (None: all)."""
    key = current_key()
    return store.Tenant(merchant_id=key.merchant_id, market_id=key.market_id)


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, to the second."""
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat() + "Z"


def _visible_markets(product: Product, tenant: store.Tenant) -> list[str]:
    """The product's market codes, without the ones a market-scoped key may not see."""
    return sorted(
        market.code
        for market in product.markets
        if tenant.market_id is None or market.id == tenant.market_id
    )


def catalog_product(product: Product, tenant: store.Tenant) -> dict[str, Any]:
    """A product as a storefront sees it (no inventory count, only whether it is in stock)."""
    return {
        "id": product.id,
        "object": "product",
        "name": product.name,
        "description": product.description,
        "price": product.price,
        "currency": product.currency,
        "sku": product.sku,
        "in_stock": product.inventory > 0,
        "markets": _visible_markets(product, tenant),
        "created_at": timestamp(product.created_at),
        "updated_at": timestamp(product.updated_at),
    }


def admin_product(product: Product, tenant: store.Tenant) -> dict[str, Any]:
    """A product as the back office sees it, with inventory and publication."""
    body = catalog_product(product, tenant)
    body["inventory"] = product.inventory
    body["published"] = product.published
    return body


def _line(item: CartItem | OrderItem, name: str, unit_price: int) -> dict[str, Any]:
    return {
        "product_id": item.product_id,
        "name": name,
        "unit_price": unit_price,
        "quantity": item.quantity,
        "line_total": unit_price * item.quantity,
    }


def cart(value: Cart) -> dict[str, Any]:
    """A cart with its lines at today's prices and its total."""
    return {
        "id": value.id,
        "object": "cart",
        "status": value.status,
        "market": value.market.code if value.market else None,
        "currency": store.cart_currency(value),
        "items": [_line(item, item.product.name, item.product.price) for item in value.items],
        "total": store.cart_total(value),
        "created_at": timestamp(value.created_at),
        "updated_at": timestamp(value.updated_at),
    }


def market(value: Market) -> dict[str, Any]:
    """A market of the store."""
    return {"id": value.id, "object": "market", "code": value.code, "name": value.name}


def customer(value: Customer) -> dict[str, Any]:
    """A customer of the store."""
    return {
        "id": value.id,
        "object": "customer",
        "email": value.email,
        "created_at": timestamp(value.created_at),
    }


def order(value: Order) -> dict[str, Any]:
    """An order with the lines as they were at checkout."""
    return {
        "id": value.id,
        "object": "order",
        "status": value.status,
        "market": value.market.code if value.market else None,
        "customer": {"id": value.customer.id, "email": value.customer.email},
        "currency": value.currency,
        "items": [_line(item, item.name, item.unit_price) for item in value.items],
        "total": value.total,
        "created_at": timestamp(value.created_at),
        "updated_at": timestamp(value.updated_at),
    }


def checkout(result: store.CheckoutResult) -> dict[str, Any]:
    """A checkout session and the pending order it created."""
    return {
        "id": result.session.id,
        "object": "checkout_session",
        "cart_id": result.session.cart_id,
        "email": result.customer.email,
        "order": order(result.order),
        "created_at": timestamp(result.session.created_at),
    }


def api_error(error: store.StoreError) -> ApiError:
    """The API error for a broken store rule: 404 for what the key cannot see, else 400."""
    if isinstance(error, store.NotFound):
        return ApiError(404, "not_found", error.message)
    return ApiError(400, "invalid_request", error.message)


@bp.errorhandler(store.StoreError)
def _store_error(error: store.StoreError) -> Response:
    """Views stay linear: a store error raised anywhere becomes the API's JSON error."""
    api = api_error(error)
    return error_response(api.status, api.code, api.message)
