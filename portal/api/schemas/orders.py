"""Orders, and the checkout sessions that create them."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field

from portal.api.schemas.base import ResponseModel, Timestamp, list_of
from portal.api.schemas.carts import Line
from portal.store import models as orm
from portal.store.common import ORDER_STATUSES
from portal.store.requests import CheckoutCreate  # noqa: F401 - re-exported

OrderStatus = Literal[ORDER_STATUSES]  # type: ignore[valid-type]


class OrderCustomer(ResponseModel):
    """Who placed the order."""

    id: int
    email: str


class Order(ResponseModel):
    """An order with its lines as they were at checkout."""

    id: int
    object: Literal["order"] = "order"
    status: OrderStatus = Field(
        description="pending (checked out, stock held until the hold time ends), placed "
        "(completed), fulfilled, cancelled or expired (not completed in time; stock returned)."
    )
    market: str | None
    customer: OrderCustomer
    currency: str = Field(pattern="^[A-Z]{3}$")
    items: list[Line]
    total: int = Field(ge=0, description="Minor units of the currency.")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, order: orm.Order) -> Self:
        """The order as the API shows it."""
        return cls(
            id=order.id,
            status=order.status,
            market=order.market.code if order.market else None,
            customer=OrderCustomer(id=order.customer.id, email=order.customer.email),
            currency=order.currency,
            items=[
                Line(
                    product_id=line.product_id,
                    name=line.name,
                    unit_price=line.unit_price,
                    quantity=line.quantity,
                    line_total=line.unit_price * line.quantity,
                )
                for line in order.items
            ],
            total=order.total,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )


class CheckoutSession(ResponseModel):
    """A checkout session and its order: pending until completed, expired after the hold."""

    id: str = Field(pattern="^chk_", examples=["chk_3tQ9bXk2Lm8Zp0Rv5Nw7Ys1A"])
    object: Literal["checkout_session"] = "checkout_session"
    cart_id: str
    email: str
    order: Order
    created_at: Timestamp
    expires_at: Timestamp = Field(
        description="When the held stock returns unless the checkout is completed first."
    )
    completed_at: Timestamp | None

    @classmethod
    def of(cls, session: orm.CheckoutSession) -> Self:
        """The checkout session as the API shows it."""
        return cls(
            id=session.id,
            cart_id=session.cart_id,
            email=session.order.customer.email,
            order=Order.of(session.order),
            created_at=session.created_at,
            expires_at=session.expires_at,
            completed_at=session.completed_at,
        )


OrderList = list_of(Order)
