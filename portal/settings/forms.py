"""The store settings form (CSRF through Flask-WTF); the settings service owns every rule."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, StringField, URLField
from wtforms.validators import InputRequired

from portal.settings.service import FIELDS, StoreSettings

_NUMBER = "Enter a whole number."


class WholeNumberField(IntegerField):
    """An integer input whose parse error says what to type."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Parse the submitted text; anything but a whole number is the field's error."""
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_NUMBER) from None

    def _value(self) -> str:
        # A number input may only hold a number: text that did not parse is not shown again.
        return "" if self.data is None else str(self.data)


class StoreSettingsForm(FlaskForm):
    """Every store setting, each field named as in the API."""

    store_name = StringField("Store name")
    support_email = EmailField("Support email")
    storefront_url = URLField("Storefront URL")
    checkout_hold_minutes = WholeNumberField(
        "Checkout hold (minutes)", validators=[InputRequired(_NUMBER)]
    )
    customer_access_minutes = WholeNumberField(
        "Shopper access token lifetime (minutes)", validators=[InputRequired(_NUMBER)]
    )
    customer_refresh_days = WholeNumberField(
        "Shopper refresh token lifetime (days)", validators=[InputRequired(_NUMBER)]
    )
    revoke_leaked_keys = BooleanField("Revoke leaked secret keys automatically")

    @classmethod
    def of(cls, settings: StoreSettings) -> StoreSettingsForm:
        """The form filled with the store's current settings."""
        return cls(formdata=None, data=settings.as_dict())

    def to_change(self) -> dict[str, Any]:
        """The submitted values, as the settings service takes them."""
        change = {name: self[name].data for name in FIELDS}
        for name in ("store_name", "support_email", "storefront_url"):
            change[name] = (change[name] or "").strip()
        change["support_email"] = change["support_email"] or None
        change["storefront_url"] = change["storefront_url"] or None
        return change

    def has_errors(self) -> bool:
        """Whether any field shows an error."""
        return any(field.errors for field in self)
