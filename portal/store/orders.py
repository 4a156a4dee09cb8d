"""Orders: listed and read by the back office, fulfilled or cancelled while open."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import selectinload

from portal import versions
from portal.database import utcnow
from portal.extensions import db
from portal.store import events
from portal.store.common import (
    ORDER_CANCELLED,
    ORDER_FULFILLED,
    ORDER_OPEN_STATUSES,
    ORDER_STATUSES,
    InvalidField,
    OrderNotFound,
    OrderStateError,
    Page,
    Tenant,
    paginate,
    transaction,
)
from portal.store.models import Order, Product


def orders_of(tenant: Tenant) -> Select[tuple[Order]]:
    """The tenant's orders (its market's only, if it has one), with lines and customer."""
    query = select(Order).where(Order.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Order.market_id == tenant.market_id)
    return query.options(
        selectinload(Order.items), selectinload(Order.customer), selectinload(Order.market)
    )


def clean_order_status(value: str | None) -> str | None:
    """An order status filter, or InvalidField naming `status`."""
    if value is None or value in ORDER_STATUSES:
        return value
    raise InvalidField("status", f"status must be one of {', '.join(ORDER_STATUSES)}.")


def list_orders(
    tenant: Tenant,
    limit: int = 20,
    starting_after: int | None = None,
    status: str | None = None,
) -> Page[Order]:
    """The tenant's orders by id, optionally only those with a status."""
    query = orders_of(tenant)
    if clean_order_status(status) is not None:
        query = query.where(Order.status == status)
    return paginate(query, Order.id, limit, starting_after)


def get_order(tenant: Tenant, order_id: int) -> Order:
    """One order of the tenant, or OrderNotFound."""
    order = db.session.scalar(orders_of(tenant).where(Order.id == order_id))
    if order is None:
        raise OrderNotFound(f"No such order: {order_id}.")
    return order


def move_order(order: Order, allowed: tuple[str, ...], new_status: str) -> bool:
    """Move an order to `new_status` if it is in one of `allowed` (conditionally, so two
    requests or workers cannot both win). Returns whether this caller moved it."""
    moved = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status.in_(allowed))
        .values(status=new_status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount == 1:
        db.session.refresh(order, ["status", "updated_at"])
        return True
    return False


def return_stock(order: Order) -> None:
    """Put an order's quantities back on the shelf (lines of deleted products aside)."""
    for line in order.items:
        if line.product_id is not None:
            db.session.execute(
                update(Product)
                .where(Product.id == line.product_id)
                .values(inventory=Product.inventory + line.quantity)
            )
            versions.note(db.session, versions.CATALOG, order.merchant_id)  # in_stock


def _leave_open(tenant: Tenant, order_id: int, new_status: str, verb: str) -> Order:
    """Move a pending or placed order to `new_status`, or OrderStateError (a conflict)."""
    order = get_order(tenant, order_id)
    if not move_order(order, ORDER_OPEN_STATUSES, new_status):
        db.session.refresh(order, ["status"])
        raise OrderStateError(
            f"Order {order.id} is {order.status}; only pending or placed orders can be {verb}."
        )
    return order


def fulfill_order(tenant: Tenant, order_id: int) -> Order:
    """Mark a pending or placed order fulfilled."""
    with transaction():
        order = _leave_open(tenant, order_id, ORDER_FULFILLED, "fulfilled")
        events.order_event(order, "order.fulfilled")
    return order


def cancel_order(tenant: Tenant, order_id: int) -> Order:
    """Cancel a pending or placed order and return its reserved stock, in one transaction."""
    with transaction():
        order = _leave_open(tenant, order_id, ORDER_CANCELLED, "cancelled")
        return_stock(order)
        events.order_event(order, "order.cancelled")
    return order


def sales_figures(tenant: Tenant) -> dict[str, Any]:
    """Order counts by status, and order totals by currency and status."""
    query = (
        select(Order.status, Order.currency, func.count(), func.coalesce(func.sum(Order.total), 0))
        .where(Order.merchant_id == tenant.merchant_id)
        .group_by(Order.status, Order.currency)
        .order_by(Order.currency, Order.status)
    )
    if tenant.market_id is not None:
        query = query.where(Order.market_id == tenant.market_id)
    counts = dict.fromkeys(ORDER_STATUSES, 0)
    revenue: dict[str, dict[str, int]] = {}
    for status, currency, count, total in db.session.execute(query):
        counts[status] = counts.get(status, 0) + count
        revenue.setdefault(currency, dict.fromkeys(ORDER_STATUSES, 0))[status] = int(total)
    return {
        "orders": counts,
        "revenue": [{"currency": currency, **amounts} for currency, amounts in revenue.items()],
    }
