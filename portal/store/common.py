"""What every area of the store shares: the tenant, pages, limits, errors and the transaction.

Every store function takes a Tenant (a merchant, and one of its markets or all of them) and
never shows or touches anything outside it: another tenant's object is indistinguishable from
one that does not exist. Functions raise StoreError subclasses, never HTTP errors.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select

from portal.extensions import db
from portal.keys.tokens import BASE62

NAME_MAX = 200
DESCRIPTION_MAX = 5000
SKU_MAX = 64
EMAIL_MAX = 254
# Amounts live in 32-bit integer columns: these bounds keep every total representable.
PRICE_MAX = 100_000_000
INVENTORY_MAX = 1_000_000_000
QUANTITY_MAX = 1000
CART_LINES_MAX = 100
TOTAL_MAX = 2**31 - 1
ID_MAX = 2**31 - 1
CART_ID_MAX = 40

CART_OPEN = "open"
CART_CHECKED_OUT = "checked_out"
CART_STATUSES = (CART_OPEN, CART_CHECKED_OUT)
ORDER_PENDING = "pending"
ORDER_PLACED = "placed"
ORDER_FULFILLED = "fulfilled"
ORDER_CANCELLED = "cancelled"
ORDER_EXPIRED = "expired"
ORDER_STATUSES = (ORDER_PENDING, ORDER_PLACED, ORDER_FULFILLED, ORDER_CANCELLED, ORDER_EXPIRED)
# Orders that still hold their stock and may be fulfilled or cancelled.
ORDER_OPEN_STATUSES = (ORDER_PENDING, ORDER_PLACED)

CART_ID_PREFIX = "cart_"
CHECKOUT_ID_PREFIX = "chk_"
RANDOM_ID_LENGTH = 24

T = TypeVar("T")


class StoreError(Exception):
    """A store rule was broken; `message` says which, in words an API consumer can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    """No such object for this tenant (another merchant's or market's object included)."""


class ProductNotFound(NotFound):
    """No such product for this tenant."""


class CartNotFound(NotFound):
    """No such cart for this tenant."""


class OrderNotFound(NotFound):
    """No such order for this tenant."""


class CheckoutNotFound(NotFound):
    """No such checkout session for this tenant."""


class InvalidRequest(StoreError):
    """The request cannot be carried out as asked."""


class InvalidField(InvalidRequest):
    """One field of the request is invalid; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class OutOfStock(InvalidField):
    """Not enough inventory of a product for the quantity asked."""

    def __init__(self, field: str, product_id: int, available: int) -> None:
        super().__init__(
            field,
            f"{field}: product_id {product_id} is out of stock "
            f"(only {max(available, 0)} available).",
        )
        self.product_id = product_id
        self.available = available


class CartClosed(InvalidRequest):
    """The cart was checked out, so it can no longer change."""


class Conflict(StoreError):
    """The request clashes with the object's current state (e.g. an order no longer open)."""


class OrderStateError(Conflict):
    """The order is not in a state that allows this transition."""


class OtherMarketsAffected(StoreError):
    """A market-scoped caller tried to change something other markets share."""

    def __init__(self, message: str, markets: list[str]) -> None:
        super().__init__(message)
        self.markets = markets


@dataclass(frozen=True)
class Tenant:
    """Whose data a caller sees: one merchant, and one of its markets or every market (None)."""

    merchant_id: int
    market_id: int | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list ordered by id, and whether more follow it."""

    items: list[T]
    has_more: bool


@contextmanager
def transaction() -> Iterator[None]:
    """Commit what the block did, or roll all of it back and re-raise: no half-done writes."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def random_id(prefix: str) -> str:
    """A random, unguessable id such as cart_… or chk_…."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(RANDOM_ID_LENGTH))


def paginate(query: Select[Any], id_column: Any, limit: int, starting_after: Any) -> Page[Any]:
    """Cursor pagination: the first `limit` rows with an id after `starting_after`."""
    if isinstance(starting_after, int) and starting_after >= ID_MAX:
        return Page([], False)  # past the largest id a column holds (PostgreSQL would overflow)
    if starting_after is not None:
        query = query.where(id_column > starting_after)
    rows = list(db.session.scalars(query.order_by(id_column).limit(limit + 1)))
    return Page(rows[:limit], len(rows) > limit)
