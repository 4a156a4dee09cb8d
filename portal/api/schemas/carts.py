"""Carts: the bodies that create carts and add items, and the cart the API answers."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field

from portal.api.schemas.base import ResponseModel, Timestamp
from portal.store import models as orm
from portal.store.common import CART_STATUSES
from portal.store.requests import CartCreate, CartItemCreate  # noqa: F401 - re-exported


class Line(ResponseModel):
    """A line of a cart (at today's price) or of an order (at the price paid)."""

    product_id: int | None = Field(description="Null once the product is deleted.")
    name: str
    unit_price: int = Field(ge=0, description="Minor units of the currency.")
    quantity: int = Field(ge=1)
    line_total: int = Field(ge=0, description="unit_price × quantity, in minor units.")


class Cart(ResponseModel):
    """A cart with its lines at today's prices and its total."""

    id: str = Field(pattern="^cart_", examples=["cart_8fJ2kQ0aZx4LmN7pR1sT3uVw"])
    object: Literal["cart"] = "cart"
    status: Literal[CART_STATUSES]  # type: ignore[valid-type]
    market: str | None = Field(description="Code of the cart's market; null for every market.")
    currency: str | None = Field(description="Null while the cart is empty.")
    items: list[Line]
    total: int = Field(ge=0, description="Minor units of the currency.")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, cart: orm.Cart) -> Self:
        """The cart as the API shows it."""
        return cls(
            id=cart.id,
            status=cart.status,
            market=cart.market.code if cart.market else None,
            currency=cart.currency,
            items=[
                Line(
                    product_id=item.product_id,
                    name=item.product.name,
                    unit_price=item.product.price,
                    quantity=item.quantity,
                    line_total=item.product.price * item.quantity,
                )
                for item in cart.items
            ],
            total=cart.total,
            created_at=cart.created_at,
            updated_at=cart.updated_at,
        )
