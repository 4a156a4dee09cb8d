"""The webhook events of the store, emitted into the outbox in the change's transaction."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.outbox import emit
from portal.store.models import Customer, Order, Product


def _order_data(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "object": "order",
        "status": order.status,
        "currency": order.currency,
        "total": order.total,
        "market": order.market.code if order.market is not None else None,
        "customer": {"id": order.customer_id, "email": order.customer.email}
        if order.customer is not None
        else None,
        "items": [
            {
                "product_id": line.product_id,
                "name": line.name,
                "unit_price": line.unit_price,
                "quantity": line.quantity,
            }
            for line in order.items
        ],
    }


def order_event(order: Order, event_type: str) -> None:
    """`order.created`, `placed`, `fulfilled`, `cancelled` or `expired` for this order."""
    emit(order.merchant_id, event_type, _order_data(order))


def product_event(product: Product, event_type: str) -> None:
    """`product.created`, `updated` or `deleted` (the product as it was, for a deletion)."""
    db.session.flush()
    emit(
        product.merchant_id,
        event_type,
        {
            "id": product.id,
            "object": "product",
            "name": product.name,
            "price": product.price,
            "currency": product.currency,
            "sku": product.sku,
            "inventory": product.inventory,
            "published": product.published,
            "markets": sorted(market.code for market in product.markets),
        },
    )


def customer_created(customer: Customer) -> None:
    """`customer.created` for a new customer (flushed here to get its id)."""
    db.session.flush()
    emit(
        customer.merchant_id,
        "customer.created",
        {"id": customer.id, "object": "customer", "email": customer.email},
    )
