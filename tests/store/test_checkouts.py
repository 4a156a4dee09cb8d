"""Checkouts hold their stock for the store's hold time: completed, the order is placed;
not completed in time, the worker's `expire_due_checkouts` expires the order and the stock
returns, once, however many workers run it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from portal import tasks
from portal.accounts.models import Merchant, User
from portal.database import utcnow
from portal.extensions import db
from portal.store import checkouts
from portal.store import service as store
from portal.store.models import CheckoutSession, Order, Product


@pytest.fixture
def tenant(user: User) -> store.Tenant:
    """The user's merchant, every market."""
    return store.Tenant(user.merchant_id)


def hoard(
    tenant: store.Tenant, inventory: int = 10, quantity: int = 10
) -> checkouts.CheckoutResult:
    """A cart of the whole shelf checked out, as a stock hoarder would."""
    mug = store.create_product(
        tenant,
        {
            "name": "Mug",
            "price": 1200,
            "currency": "USD",
            "inventory": inventory,
            "published": True,
        },
    )
    cart = store.create_cart(tenant, {"items": [{"product_id": mug.id, "quantity": quantity}]})
    return store.checkout(tenant, {"cart_id": cart.id, "email": "hoarder@example.test"})


def inventory(product_id: int | None) -> int:
    """A product's stock as the database has it now."""
    db.session.expire_all()
    return db.session.get(Product, product_id).inventory


def test_a_checkout_holds_for_the_stores_hold_time(tenant: store.Tenant, user: User) -> None:
    result = hoard(tenant)
    assert result.session.expires_at - result.session.created_at == timedelta(minutes=30)
    checkouts.set_hold_minutes(user.merchant_id, 5)
    result = hoard(tenant)
    assert result.session.expires_at - result.session.created_at == timedelta(minutes=5)


@pytest.mark.parametrize("minutes", [4, 1441, 0, -30])
def test_the_hold_time_is_5_to_1440_minutes(user: User, minutes: int) -> None:
    with pytest.raises(store.InvalidField, match="from 5 to 1440") as refused:
        checkouts.set_hold_minutes(user.merchant_id, minutes)
    assert refused.value.field == "checkout_hold_minutes"
    assert db.session.get(Merchant, user.merchant_id).checkout_hold_minutes == 30


def test_expiry_returns_the_stock_of_checkouts_not_completed(tenant: store.Tenant) -> None:
    hoarded = hoard(tenant)
    product_id = hoarded.order.items[0].product_id
    completed = hoard(tenant, inventory=3, quantity=2)
    store.complete_checkout(tenant, completed.session.id)
    assert inventory(product_id) == 0
    # Before the hold ends nothing expires.
    assert checkouts.expire_due_checkouts(utcnow() + timedelta(minutes=29)) == 0
    assert store.get_order(tenant, hoarded.order.id).status == "pending"

    assert checkouts.expire_due_checkouts(utcnow() + timedelta(minutes=31)) == 1
    assert store.get_order(tenant, hoarded.order.id).status == "expired"
    assert inventory(product_id) == 10
    # The completed checkout keeps its order placed and its stock held.
    assert store.get_order(tenant, completed.order.id).status == "placed"
    assert inventory(completed.order.items[0].product_id) == 1
    # Running it again changes nothing.
    assert checkouts.expire_due_checkouts(utcnow() + timedelta(days=1)) == 0
    assert inventory(product_id) == 10


def test_an_expired_checkout_cannot_be_completed_nor_its_order_fulfilled(
    tenant: store.Tenant,
) -> None:
    result = hoard(tenant)
    checkouts.expire_due_checkouts(utcnow() + timedelta(hours=1))
    with pytest.raises(store.Conflict, match="its order is expired"):
        store.complete_checkout(tenant, result.session.id)
    with pytest.raises(store.OrderStateError, match="is expired; only pending or placed"):
        store.fulfill_order(tenant, result.order.id)
    assert db.session.get(CheckoutSession, result.session.id).completed_at is None


def test_a_checkout_past_its_hold_cannot_be_completed_before_the_worker_runs(
    tenant: store.Tenant,
) -> None:
    result = hoard(tenant)
    later = utcnow() + timedelta(minutes=31)
    with pytest.raises(store.Conflict, match="expired at"):
        store.complete_checkout(tenant, result.session.id, now=later)
    assert store.get_order(tenant, result.order.id).status == "pending"


def test_a_cancelled_order_does_not_return_its_stock_twice(tenant: store.Tenant) -> None:
    result = hoard(tenant)
    store.cancel_order(tenant, result.order.id)
    assert checkouts.expire_due_checkouts(utcnow() + timedelta(hours=1)) == 0
    assert inventory(result.order.items[0].product_id) == 10


def test_two_workers_at_once_expire_each_order_once(app: Flask, tenant: store.Tenant) -> None:
    results = [hoard(tenant, inventory=4, quantity=3) for _ in range(6)]
    product_ids = [result.order.items[0].product_id for result in results]
    db.session.commit()
    later = utcnow() + timedelta(hours=1)
    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with app.app_context():
            try:
                barrier.wait()
                counts.append(checkouts.expire_due_checkouts(later))
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(counts) == 6
    assert [inventory(product_id) for product_id in product_ids] == [4] * 6
    statuses = db.session.scalars(select(Order.status)).all()
    assert statuses == ["expired"] * 6


def test_other_merchants_checkouts_are_not_found(tenant: store.Tenant, other_user: User) -> None:
    result = hoard(tenant)
    with pytest.raises(store.CheckoutNotFound):
        store.complete_checkout(store.Tenant(other_user.merchant_id), result.session.id)
    assert store.get_order(tenant, result.order.id).status == "pending"


def test_the_workers_every_minute_task_expires_checkouts_past_their_hold(
    tenant: store.Tenant,
) -> None:
    hoarded = hoard(tenant)
    product_id = hoarded.order.items[0].product_id
    tasks.every_minute()  # what the worker's scheduler runs each minute: within the hold
    assert store.get_order(tenant, hoarded.order.id).status == "pending"

    session = db.session.get(CheckoutSession, hoarded.session.id)
    session.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    tasks.every_minute()
    db.session.expire_all()
    assert store.get_order(tenant, hoarded.order.id).status == "expired"
    assert inventory(product_id) == 10
