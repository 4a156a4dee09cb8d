"""The JSON bodies the shopper and admin customer endpoints accept, one `RequestModel` each.

Parsed strictly by `portal.api.errors.parse_body` (unknown fields and loose types refused); each
field's `description` is what the 400's message says it accepts. The responses are in
`portal.api.schemas.customers`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from portal.accounts.service import normalize_email
from portal.store.common import EMAIL_MAX
from portal.store.customers import is_valid_email
from portal.store.requests import RequestModel

NAME_MAX = 120
PASSWORD_MIN = 10
# argon2 hashes any length, but a megabyte password is a denial of service, not a password.
PASSWORD_MAX = 256
TOKEN_MAX = 200


def _email(value: str) -> str:
    email = normalize_email(value)
    if not is_valid_email(email):
        raise ValueError("not an email address")
    return email


def _no_control_characters(value: str) -> str:
    if not value.isprintable():
        raise ValueError("control characters")
    return value


Email = Annotated[
    str,
    StringConstraints(max_length=EMAIL_MAX),
    AfterValidator(_email),
    Field(
        description="a valid email address",
        examples=["ada@example.com"],
        json_schema_extra={"format": "email"},
    ),
]
Password = Annotated[
    str,
    StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX),
    Field(
        description=f"a string of {PASSWORD_MIN} to {PASSWORD_MAX} characters",
        examples=["plum jam on toast"],
    ),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=NAME_MAX),
    AfterValidator(_no_control_characters),
    Field(
        description=f"a string of at most {NAME_MAX} characters, without line breaks or other "
        "control characters",
        examples=["Ada Lovelace"],
    ),
]
Code = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{6}$"),
    Field(description="the 6-digit code of the sign-in mail", examples=["492017"]),
]


class RegisterBody(RequestModel):
    """A new shopper account; signs the shopper in."""

    object_name: ClassVar[str] = "registration"

    email: Email
    password: Password
    name: Name = ""


class SessionBody(RequestModel):
    """A sign-in: the email with either the password or a mailed code."""

    object_name: ClassVar[str] = "sign-in"

    email: Email
    password: Annotated[
        str,
        StringConstraints(max_length=PASSWORD_MAX),
        Field(description="the shopper's password (or send code instead)"),
    ] = None  # type: ignore[assignment]
    code: Code = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _password_or_code(self) -> Self:
        if (self.password is None) == (self.code is None):
            raise PydanticCustomError(
                "password_or_code", "send email with either password or code (not both)"
            )
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The model's schema, saying that exactly one of password and code is sent."""
        schema: dict[str, Any] = handler.resolve_ref_schema(handler(core_schema))
        schema["oneOf"] = [{"required": ["password"]}, {"required": ["code"]}]
        return schema


class EmailBody(RequestModel):
    """The email to mail a sign-in code or a reset link to (202 whether or not it is known)."""

    object_name: ClassVar[str] = "request"

    email: Email


class RefreshBody(RequestModel):
    """The refresh token to spend for a new pair."""

    object_name: ClassVar[str] = "refresh"

    refresh_token: Annotated[
        str,
        StringConstraints(min_length=1, max_length=TOKEN_MAX),
        Field(
            description="the refresh token (crt_…) of the last sign-in or refresh",
            examples=["crt_8fJ2kQ0aZx4LmN7pR1sT3uVw8fJ2kQ0aZx4LmN7p1a2B3c"],
        ),
    ]


class ResetConfirmBody(RequestModel):
    """A new password with the token of a reset link."""

    object_name: ClassVar[str] = "password reset"

    token: Annotated[
        str,
        StringConstraints(min_length=1, max_length=TOKEN_MAX),
        Field(
            description="the token (crs_…) of the reset link",
            examples=["crs_8fJ2kQ0aZx4LmN7pR1sT3uVw8fJ2kQ0aZx4LmN7p1a2B3c"],
        ),
    ]
    password: Password


class ProfileUpdate(RequestModel):
    """The signed-in shopper's new name."""

    object_name: ClassVar[str] = "customer"

    name: Name


class AdminCustomerUpdate(RequestModel):
    """A change to a customer: the fields given change, the others stay (at least one)."""

    object_name: ClassVar[str] = "customer"

    name: Name = None  # type: ignore[assignment]
    email: Email = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.name is None and self.email is None:
            raise PydanticCustomError("nothing_to_change", "send name and/or email to change")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The model's schema, saying that at least one field is sent."""
        schema: dict[str, Any] = handler.resolve_ref_schema(handler(core_schema))
        schema["minProperties"] = 1
        return schema
