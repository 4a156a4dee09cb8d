"""Customers of the store: as the back office lists and reads them, and as a signed-in shopper
sees itself and its sign-ins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from portal.api.schemas.base import ResponseModel, Timestamp, list_of
from portal.store import models as orm

if TYPE_CHECKING:
    from portal.customers.models import CustomerAccount, CustomerSession
    from portal.customers.service import CustomerDetail, SignIn


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


# -- shoppers (`customer:auth`) and the back office's view of one customer


class CustomerProfile(ResponseModel):
    """A shopper as the shopper sees itself."""

    id: int
    object: Literal["customer"] = "customer"
    email: str
    name: str = Field(description='The name the shopper gave ("" if none).')
    created_at: Timestamp

    @classmethod
    def of(cls, customer: orm.Customer, account: CustomerAccount | None) -> Self:
        """The customer and its account (None for a guest) as the API shows them."""
        return cls(
            id=customer.id,
            email=customer.email,
            name=account.name if account else "",
            created_at=customer.created_at,
        )


class ShopperSignIn(ResponseModel):
    """A sign-in's tokens: send the access token as `X-Customer-Token`, spend the refresh
    token at `POST /customers/sessions/refresh` for a new pair."""

    object: Literal["customer_session"] = "customer_session"
    customer: CustomerProfile
    access_token: str = Field(pattern="^cat_", description="Send it as X-Customer-Token.")
    refresh_token: str = Field(pattern="^crt_", description="Works once, for a new pair.")
    token_type: Literal["customer"] = "customer"  # noqa: S105 - a kind, not a secret
    access_expires_in: int = Field(ge=0, description="Seconds the access token works.")
    refresh_expires_in: int = Field(ge=0, description="Seconds the refresh token works.")

    @classmethod
    def of(cls, signed_in: SignIn) -> Self:
        """The token pair just issued, with its shopper."""
        return cls(
            customer=CustomerProfile.of(signed_in.customer, signed_in.account),
            access_token=signed_in.access_token,
            refresh_token=signed_in.refresh_token,
            access_expires_in=signed_in.access_expires_in,
            refresh_expires_in=signed_in.refresh_expires_in,
        )


class OpenSession(ResponseModel):
    """An open sign-in of a customer, as the merchant sees it (never its tokens)."""

    id: int
    object: Literal["customer_session"] = "customer_session"
    method: str = Field(description="How the shopper signed in.", examples=["password", "code"])
    user_agent: str
    ip: str | None
    created_at: Timestamp
    last_used_at: Timestamp

    @classmethod
    def of(cls, session: CustomerSession) -> Self:
        """The sign-in as the API shows it."""
        return cls(
            id=session.id,
            method=session.method,
            user_agent=session.user_agent,
            ip=session.ip,
            created_at=session.created_at,
            last_used_at=session.last_used_at,
        )


class AdminCustomer(CustomerProfile):
    """A customer as the back office sees it: registered or guest, orders, open sign-ins."""

    registered: bool = Field(description="false for a guest who only checked out.")
    order_count: int = Field(ge=0)
    sessions: list[OpenSession]

    @classmethod
    def of_detail(cls, detail: CustomerDetail) -> Self:
        """The customer with its order count and open sign-ins."""
        return cls(
            **CustomerProfile.of(detail.customer, detail.account).model_dump(),
            registered=detail.account is not None,
            order_count=detail.order_count,
            sessions=[OpenSession.of(session) for session in detail.open_sessions],
        )


class Accepted(ResponseModel):
    """202 for codes and resets: the same answer whether or not the email has an account."""

    object: Literal["accepted"] = "accepted"
    message: str


class CustomerSignOut(ResponseModel):
    """What `POST /admin/customers/<id>/sign-out` ended."""

    object: Literal["customer_sign_out"] = "customer_sign_out"
    customer_id: int
    sessions_ended: int = Field(ge=0)
