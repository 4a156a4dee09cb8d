"""Checkouts: a cart becomes a pending order holding its stock for the store's hold time; the
shopper completes it (the order is placed), or it expires and the stock returns."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import versions
from portal.accounts.models import Merchant
from portal.database import utcnow
from portal.extensions import db
from portal.store import events
from portal.store.carts import get_cart
from portal.store.common import (
    CART_CHECKED_OUT,
    CART_OPEN,
    CHECKOUT_ID_PREFIX,
    ORDER_EXPIRED,
    ORDER_PENDING,
    ORDER_PLACED,
    TOTAL_MAX,
    CartClosed,
    CartNotFound,
    CheckoutNotFound,
    Conflict,
    InvalidField,
    OutOfStock,
    Tenant,
    random_id,
    transaction,
)
from portal.store.customers import find_or_create_customer
from portal.store.models import Cart, CheckoutSession, Customer, Order, OrderItem, Product
from portal.store.orders import move_order, return_stock
from portal.store.products import catalog_of
from portal.store.requests import CheckoutCreate

HOLD_MINUTES_DEFAULT = 30
HOLD_MINUTES_MIN = 5
HOLD_MINUTES_MAX = 1440
CHECKOUT_ID_MAX = 40
EXPIRE_BATCH = 200

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckoutResult:
    """What a checkout created: the session, its pending order and the customer."""

    session: CheckoutSession
    order: Order
    customer: Customer


def checkout(
    tenant: Tenant, data: CheckoutCreate | Mapping[str, Any], customer_id: int | None = None
) -> CheckoutResult:
    """Turn an open cart into a checkout session and a pending order, reserving inventory.

    All or nothing: if any line cannot be reserved, no inventory, order or customer changes.
    The order belongs to `customer_id` (the signed-in shopper), else to the cart's shopper, else
    to the guest customer of `email`; another shopper's cart is not found.
    """
    body = CheckoutCreate.parse(data)
    try:
        return _checkout(tenant, body.cart_id, body.email, customer_id)
    except IntegrityError:
        # A concurrent checkout created this customer first; it exists now, so try once more.
        return _checkout(tenant, body.cart_id, body.email, customer_id)


def _hold(merchant_id: int) -> timedelta:
    minutes = db.session.scalar(
        select(Merchant.checkout_hold_minutes).where(Merchant.id == merchant_id)
    )
    return timedelta(minutes=minutes or HOLD_MINUTES_DEFAULT)


def _checkout(
    tenant: Tenant, cart_id: str, email: str, customer_id: int | None = None
) -> CheckoutResult:
    """One attempt at a checkout, in one transaction."""
    with transaction():
        cart = get_cart(tenant, cart_id)
        if customer_id is not None and cart.customer_id not in (None, customer_id):
            raise CartNotFound(f"No such cart: {cart_id}.")
        if cart.status != CART_OPEN:
            raise CartClosed(f"Cart {cart.id} is already checked out.")
        if not cart.items:
            raise InvalidField("cart_id", f"cart_id {cart.id} is empty; add items first.")
        # Claim the cart first, so two concurrent checkouts of one cart cannot both succeed.
        claimed = db.session.execute(
            update(Cart)
            .where(Cart.id == cart.id, Cart.status == CART_OPEN)
            .values(
                status=CART_CHECKED_OUT,
                updated_at=utcnow(),
                customer_id=cart.customer_id if customer_id is None else customer_id,
            )
        )
        if claimed.rowcount != 1:
            raise CartClosed(f"Cart {cart.id} is already checked out.")
        currency = cart.currency
        lines = []
        for item in cart.items:
            product = item.product
            on_sale = db.session.scalar(
                catalog_of(cart.merchant_id, cart.market_id).where(Product.id == product.id)
            )
            if on_sale is None:
                raise InvalidField(
                    "cart_id", f"product_id {product.id} in the cart is no longer for sale."
                )
            if product.currency != currency:
                raise InvalidField(
                    "cart_id",
                    f"product_id {product.id} is priced in {product.currency} but the cart is "
                    f"in {currency}; a cart holds a single currency.",
                )
            # A conditional decrement: safe against concurrent checkouts in any process.
            reserved = db.session.execute(
                update(Product)
                .where(Product.id == product.id, Product.inventory >= item.quantity)
                .values(inventory=Product.inventory - item.quantity)
            )
            versions.note(db.session, versions.CATALOG, product.merchant_id)  # in_stock
            if reserved.rowcount != 1:
                db.session.refresh(product, ["inventory"])
                raise OutOfStock("cart_id", product.id, product.inventory)
            lines.append(
                OrderItem(
                    product_id=product.id,
                    name=product.name,
                    unit_price=product.price,
                    quantity=item.quantity,
                )
            )
        total = sum(line.unit_price * line.quantity for line in lines)
        if total > TOTAL_MAX:
            raise InvalidField("cart_id", "The cart total is too large for one order.")
        owner_id = customer_id if customer_id is not None else cart.customer_id
        if owner_id is not None:
            customer = db.session.get(Customer, owner_id)
        else:
            customer = find_or_create_customer(tenant.merchant_id, email)
        order = Order(
            merchant_id=tenant.merchant_id,
            market_id=cart.market_id,
            customer=customer,
            status=ORDER_PENDING,
            currency=currency,
            total=total,
            items=lines,
        )
        db.session.add(order)
        db.session.flush()
        now = utcnow()
        session = CheckoutSession(
            id=random_id(CHECKOUT_ID_PREFIX),
            merchant_id=tenant.merchant_id,
            cart_id=cart.id,
            order=order,
            order_id=order.id,
            customer_id=customer.id,
            created_at=now,
            expires_at=now + _hold(tenant.merchant_id),
        )
        db.session.add(session)
        events.order_event(order, "order.created")
    return CheckoutResult(session=session, order=order, customer=customer)


def get_checkout(tenant: Tenant, checkout_id: str) -> CheckoutSession:
    """One checkout session of the tenant (of its market, if it has one), or CheckoutNotFound."""
    if not checkout_id.isprintable() or len(checkout_id) > CHECKOUT_ID_MAX:
        raise CheckoutNotFound("No such checkout.")
    query = (
        select(CheckoutSession)
        .join(Order, Order.id == CheckoutSession.order_id)
        .where(CheckoutSession.id == checkout_id, CheckoutSession.merchant_id == tenant.merchant_id)
        .options(
            selectinload(CheckoutSession.order).selectinload(Order.items),
            selectinload(CheckoutSession.order).selectinload(Order.customer),
            selectinload(CheckoutSession.order).selectinload(Order.market),
        )
    )
    if tenant.market_id is not None:
        query = query.where(Order.market_id == tenant.market_id)
    session = db.session.scalar(query)
    if session is None:
        raise CheckoutNotFound(f"No such checkout: {checkout_id}.")
    return session


def complete_checkout(
    tenant: Tenant, checkout_id: str, now: datetime | None = None
) -> CheckoutSession:
    """Complete a checkout within its hold time: its order becomes placed and keeps its stock."""
    now = now or utcnow()
    with transaction():
        session = get_checkout(tenant, checkout_id)
        if session.completed_at is not None:
            raise Conflict(f"Checkout {session.id} is already completed.")
        if session.expires_at <= now:
            raise Conflict(
                f"Checkout {session.id} expired at {session.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
                "its stock was released. Check out the items again."
            )
        if not move_order(session.order, (ORDER_PENDING,), ORDER_PLACED):
            raise Conflict(
                f"Checkout {session.id} cannot be completed: its order is {session.order.status}."
            )
        session.completed_at = now
        events.order_event(session.order, "order.placed")
    return session


def expire_due_checkouts(now: datetime | None = None) -> int:
    """Expire every checkout past its hold time that was not completed; returns how many.

    Each order moves from pending to expired and its stock returns, in one transaction per
    batch. The move is conditional, so two workers running at once expire each order once.
    """
    now = now or utcnow()
    expired = 0
    while True:
        due = list(
            db.session.scalars(
                select(Order)
                .join(CheckoutSession, CheckoutSession.order_id == Order.id)
                .where(
                    CheckoutSession.completed_at.is_(None),
                    CheckoutSession.expires_at <= now,
                    Order.status == ORDER_PENDING,
                )
                .order_by(CheckoutSession.expires_at, Order.id)
                .limit(EXPIRE_BATCH)
                .options(selectinload(Order.items))
            )
        )
        if not due:
            break
        with transaction():
            for order in due:
                if move_order(order, (ORDER_PENDING,), ORDER_EXPIRED):
                    return_stock(order)
                    events.order_event(order, "order.expired")
                    expired += 1
                    log.info("Order %s expired (checkout not completed in time)", order.id)
        if len(due) < EXPIRE_BATCH:
            break
    return expired


def set_hold_minutes(merchant_id: int, minutes: int) -> None:
    """Set how long the merchant's checkouts hold their stock (5 to 1440 minutes)."""
    if isinstance(minutes, bool) or not HOLD_MINUTES_MIN <= minutes <= HOLD_MINUTES_MAX:
        raise InvalidField(
            "checkout_hold_minutes",
            f"checkout_hold_minutes must be a number of minutes from {HOLD_MINUTES_MIN} "
            f"to {HOLD_MINUTES_MAX}.",
        )
    with transaction():
        db.session.execute(
            update(Merchant).where(Merchant.id == merchant_id).values(checkout_hold_minutes=minutes)
        )
