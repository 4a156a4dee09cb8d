"""Read and change a store's settings; every rule and message about them lives here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints
from sqlalchemy import select

from portal.accounts.models import Merchant
from portal.accounts.service import normalize_email
from portal.extensions import db
from portal.outbox import emit
from portal.store.checkouts import HOLD_MINUTES_MAX, HOLD_MINUTES_MIN
from portal.store.common import EMAIL_MAX, NotFound, transaction
from portal.store.customers import is_valid_email
from portal.store.requests import RequestModel

STORE_NAME_MAX = 120
URL_MAX = 2048
ACCESS_MINUTES_MIN, ACCESS_MINUTES_MAX = 5, 1440
REFRESH_DAYS_MIN, REFRESH_DAYS_MAX = 1, 365
FIELDS = (
    "store_name",
    "support_email",
    "storefront_url",
    "checkout_hold_minutes",
    "customer_access_minutes",
    "customer_refresh_days",
    "revoke_leaked_keys",
)


def _email_or_none(value: str | None) -> str | None:
    if not value:
        return None
    email = normalize_email(value)
    if not is_valid_email(email):
        raise ValueError("not an email address")
    return email


def _url_or_none(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ValueError("not an http(s) URL")
    return value.rstrip("/")


StoreName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=STORE_NAME_MAX),
    Field(description="a non-empty string", examples=["Blue Rim Ceramics"]),
]
SupportEmail = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=EMAIL_MAX)] | None,
    AfterValidator(_email_or_none),
    Field(description="an email address, or null for none", examples=["help@bluerim.test"]),
]
StorefrontUrl = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=URL_MAX)] | None,
    AfterValidator(_url_or_none),
    Field(
        description="an http or https URL such as https://shop.example.com, or null",
        examples=["https://shop.bluerim.test"],
    ),
]
HoldMinutes = Annotated[
    int,
    Field(
        ge=HOLD_MINUTES_MIN,
        le=HOLD_MINUTES_MAX,
        description=f"a number of minutes from {HOLD_MINUTES_MIN} to {HOLD_MINUTES_MAX}",
        examples=[30],
    ),
]
AccessMinutes = Annotated[
    int,
    Field(
        ge=ACCESS_MINUTES_MIN,
        le=ACCESS_MINUTES_MAX,
        description=f"a number of minutes from {ACCESS_MINUTES_MIN} to {ACCESS_MINUTES_MAX}",
        examples=[15],
    ),
]
RefreshDays = Annotated[
    int,
    Field(
        ge=REFRESH_DAYS_MIN,
        le=REFRESH_DAYS_MAX,
        description=f"a number of days from {REFRESH_DAYS_MIN} to {REFRESH_DAYS_MAX}",
        examples=[30],
    ),
]
RevokeLeaked = Annotated[bool, Field(description="true or false")]


class SettingsUpdate(RequestModel):
    """A change to the store's settings: only the fields given change."""

    object_name: ClassVar[str] = "settings"

    store_name: StoreName = None  # type: ignore[assignment]
    support_email: SupportEmail = None
    storefront_url: StorefrontUrl = None
    checkout_hold_minutes: HoldMinutes = None  # type: ignore[assignment]
    customer_access_minutes: AccessMinutes = None  # type: ignore[assignment]
    customer_refresh_days: RefreshDays = None  # type: ignore[assignment]
    revoke_leaked_keys: RevokeLeaked = None  # type: ignore[assignment]


@dataclass(frozen=True)
class StoreSettings:
    """A store's settings as they are now."""

    store_name: str
    support_email: str | None
    storefront_url: str | None
    checkout_hold_minutes: int
    customer_access_minutes: int
    customer_refresh_days: int
    revoke_leaked_keys: bool

    @classmethod
    def of(cls, merchant: Merchant) -> StoreSettings:
        """The settings held by a merchant row."""
        return cls(
            store_name=merchant.name,
            support_email=merchant.support_email,
            storefront_url=merchant.storefront_url,
            checkout_hold_minutes=merchant.checkout_hold_minutes,
            customer_access_minutes=merchant.customer_access_minutes,
            customer_refresh_days=merchant.customer_refresh_days,
            revoke_leaked_keys=merchant.revoke_leaked_keys,
        )

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain mapping, field by field."""
        return {name: getattr(self, name) for name in FIELDS}


def _merchant(merchant_id: int) -> Merchant:
    merchant = db.session.scalar(select(Merchant).where(Merchant.id == merchant_id))
    if merchant is None:
        raise NotFound("No such store.")
    return merchant


def get_settings(merchant_id: int) -> StoreSettings:
    """The store's settings."""
    return StoreSettings.of(_merchant(merchant_id))


def update_settings(
    merchant_id: int, data: SettingsUpdate | Mapping[str, Any]
) -> tuple[StoreSettings, list[str]]:
    """Apply the fields given (InvalidField names the first bad one, nothing changes then);
    returns the new settings and the names of the fields that changed."""
    change = SettingsUpdate.parse(data)
    # Only nullable fields may be given as null: the others' types refuse it when parsing.
    given = change.model_fields_set
    with transaction():
        merchant = _merchant(merchant_id)
        before = StoreSettings.of(merchant).as_dict()
        for name in given:
            column = "name" if name == "store_name" else name
            setattr(merchant, column, getattr(change, name))
        after = StoreSettings.of(merchant)
        changed = [name for name in FIELDS if before[name] != getattr(after, name)]
        if changed:
            emit(
                merchant_id,
                "settings.updated",
                {"object": "settings", "changed": changed, **after.as_dict()},
            )
    return after, changed
