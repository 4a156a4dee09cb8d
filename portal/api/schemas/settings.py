"""The store's settings, as the back office reads and changes them."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field

from portal.api.schemas.base import ResponseModel
from portal.settings.service import SettingsUpdate, StoreSettings

__all__ = ["Settings", "SettingsUpdate"]


class Settings(ResponseModel):
    """The store's settings."""

    object: Literal["settings"] = "settings"
    store_name: str
    support_email: str | None
    storefront_url: str | None = Field(
        description="Where shoppers' links (password resets) point when the request has no "
        "allowed Origin."
    )
    checkout_hold_minutes: int = Field(description="How long a checkout holds its stock.")
    customer_access_minutes: int = Field(description="Lifetime of a shopper's access token.")
    customer_refresh_days: int = Field(description="Lifetime of a shopper's refresh token.")
    revoke_leaked_keys: bool = Field(
        description="Revoke a secret key at once when a secret scanner reports it leaked."
    )

    @classmethod
    def of(cls, settings: StoreSettings) -> Self:
        """The settings as the API shows them."""
        return cls(**settings.as_dict())
