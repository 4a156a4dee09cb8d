"""The JSON bodies of the shopper and admin customer endpoints, one pydantic model each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from portal.customers.models import CustomerAccount, CustomerSession
from portal.store.models import Customer

EMAIL_MAX = 254
NAME_MAX = 120
PASSWORD_MIN = 10
# argon2 hashes any length, but a megabyte password is a denial of service, not a password.
PASSWORD_MAX = 256


def _email(value: str) -> str:
    value = value.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in value):
        raise ValueError("must be a valid email address")
    if "@" in domain or len(value) > EMAIL_MAX:
        raise ValueError("must be a valid email address")
    return value


def _no_control_characters(value: str) -> str:
    if any(not char.isprintable() for char in value):
        raise ValueError("must not contain control characters")
    return value


Email = Annotated[str, StringConstraints(max_length=EMAIL_MAX + 64), AfterValidator(_email)]
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=NAME_MAX),
    AfterValidator(_no_control_characters),
]
Token = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class Body(BaseModel):
    """A request body: unknown fields and loose types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RegisterBody(Body):
    """`POST /customers`."""

    email: Email
    password: Password
    name: Name = ""


class SessionBody(Body):
    """`POST /customers/sessions`: the email with either the password or a mailed code."""

    email: Email
    password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX)] | None = None
    code: Code | None = None

    @model_validator(mode="after")
    def _password_or_code(self) -> SessionBody:
        if (self.password is None) == (self.code is None):
            raise ValueError("send either password or code")
        return self


class EmailBody(Body):
    """`POST /customers/codes` and `POST /customers/password-resets`."""

    email: Email


class RefreshBody(Body):
    """`POST /customers/sessions/refresh`."""

    refresh_token: Token


class ResetConfirmBody(Body):
    """`POST /customers/password-resets/confirm`."""

    token: Token
    password: Password


class ProfileUpdate(Body):
    """`PATCH /customers/me`."""

    name: Name


class AdminCustomerUpdate(Body):
    """`PATCH /admin/customers/<id>`: the fields given change, the others stay."""

    name: Name | None = None
    email: Email | None = None


# -- responses ------------------------------------------------------------------------------


class Response(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="forbid")


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


class CustomerOut(Response):
    """A shopper as the shopper sees itself."""

    id: int
    object: Literal["customer"] = "customer"
    email: str
    name: str
    created_at: str | None

    @classmethod
    def of(cls, customer: Customer, account: CustomerAccount | None) -> CustomerOut:
        """The shape of a customer and its account."""
        return cls(
            id=customer.id,
            email=customer.email,
            name=account.name if account else "",
            created_at=_timestamp(customer.created_at),
        )


class SignInOut(Response):
    """A sign-in's tokens: send the access token as `X-Customer-Token`."""

    object: Literal["customer_session"] = "customer_session"
    customer: CustomerOut
    access_token: str
    refresh_token: str
    token_type: Literal["customer"] = "customer"  # noqa: S105 - a kind, not a secret
    access_expires_in: int = Field(description="Seconds the access token works.")
    refresh_expires_in: int = Field(description="Seconds the refresh token works.")


class SessionOut(Response):
    """An open sign-in of a customer, as the merchant sees it."""

    id: int
    object: Literal["customer_session"] = "customer_session"
    method: str
    user_agent: str
    ip: str | None
    created_at: str | None
    last_used_at: str | None

    @classmethod
    def of(cls, session: CustomerSession) -> SessionOut:
        """The shape of a sign-in (never its tokens)."""
        return cls(
            id=session.id,
            method=session.method,
            user_agent=session.user_agent,
            ip=session.ip,
            created_at=_timestamp(session.created_at),
            last_used_at=_timestamp(session.last_used_at),
        )


class AdminCustomerOut(CustomerOut):
    """A customer as the back office sees it: registered or guest, orders, open sign-ins."""

    registered: bool
    order_count: int
    sessions: list[SessionOut]


class AcceptedOut(Response):
    """202 for codes and resets: the same answer whether or not the email has an account."""

    object: Literal["accepted"] = "accepted"
    message: str


class SignOutEverywhereOut(Response):
    """What `POST /admin/customers/<id>/sign-out` ended."""

    object: Literal["customer_sign_out"] = "customer_sign_out"
    customer_id: int
    sessions_ended: int
