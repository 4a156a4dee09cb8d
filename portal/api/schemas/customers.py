"""Customers of the store, as the back office sees them."""

from __future__ import annotations

from typing import Literal, Self

from portal.api.schemas.base import ResponseModel, Timestamp, list_of
from portal.store import models as orm


class Customer(ResponseModel):
    """A shopper, known by email."""

    id: int
    object: Literal["customer"] = "customer"
    email: str
    created_at: Timestamp

    @classmethod
    def of(cls, customer: orm.Customer) -> Self:
        """The customer as the API shows it."""
        return cls(id=customer.id, email=customer.email, created_at=customer.created_at)


CustomerList = list_of(Customer)
