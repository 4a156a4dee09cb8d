"""Forms for creating, editing, rotating and revoking keys."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    FieldList,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.accounts.models import Market
from portal.keys import scopes, service, tokens
from portal.routing import id_arg

TYPE_CHOICES = [
    SelectChoice("publishable", "Publishable: safe in storefront browser code"),
    SelectChoice("secret", "Secret: server scripts only"),
]


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _market_choice(value: str | int | None) -> int | None:
    """The market select's value: an id, or None for every market."""
    if value in (None, "", "None"):
        return None
    # Not an id (a huge number, "²"): no market has it, so the service asks to choose one.
    return value if isinstance(value, int) else id_arg(value) or 0


class KeySettingsForm(FlaskForm):
    """The settings a key can change over its life (the edit form)."""

    # Only parsing happens here; the key service owns every rule and its message.
    focus_field: str | None = None  # the row to focus after Add or Remove re-renders the form
    label = StringField("Label")
    description = TextAreaField("Description")
    scopes = MultiCheckboxField(
        "Scopes", choices=[SelectChoice(scope.name) for scope in scopes.SCOPES.values()]
    )
    market_id = SelectField("Market", coerce=_market_choice, validate_choice=False)
    allowed_origins = FieldList(StringField("Origin"), min_entries=1, max_entries=50)
    allowed_ip_ranges = FieldList(StringField("IP range"), min_entries=1, max_entries=50)
    rate_limit = IntegerField(
        "Rate limit (requests per minute)",
        default=service.RATE_LIMIT_DEFAULT,
        validators=[Optional()],
    )
    expires_at = DateTimeLocalField(
        "Expires",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        render_kw={"step": 60},
    )

    def set_markets(self, markets: list[Market]) -> None:
        """Offer the merchant's markets, and 'All markets'."""
        self.market_id.choices = [SelectChoice("", "All markets")] + [
            SelectChoice(str(market.id), f"{market.code}: {market.name}") for market in markets
        ]

    def to_settings(self) -> service.KeySettings:
        """The typed values, for the service to validate."""
        return service.KeySettings(
            label=self.label.data or "",
            description=self.description.data or "",
            scopes=list(self.scopes.data or []),
            market_id=self.market_id.data,
            allowed_origins=[value or "" for value in self.allowed_origins.data],
            allowed_ip_ranges=[value or "" for value in self.allowed_ip_ranges.data],
            rate_limit=self.rate_limit.data,
            expires_at=self.expires_at.data,
        )

    def has_errors(self) -> bool:
        """Whether any field, or any row of the origin and IP range lists, shows an error."""
        # A FieldList computes its errors while validating, so a row error added later by
        # add_service_errors is not in `self.errors`.
        rows = [*self.allowed_origins.entries, *self.allowed_ip_ranges.entries]
        return bool(self.errors) or any(row.errors for row in rows)

    def error_summary(self) -> list[tuple[str, str, str]]:
        """Every error in form order, as (id to link to, what it is about, message)."""
        anchors = {
            "scopes": "scopes",
            "allowed_origins": "origins",
            "allowed_ip_ranges": "ip-ranges",
        }
        summary: list[tuple[str, str, str]] = []
        for field in self:
            if field.type in ("CSRFTokenField", "HiddenField"):
                continue
            if isinstance(field, FieldList):
                for number, entry in enumerate(field.entries, start=1):
                    summary += [(entry.id, f"{entry.label.text} {number}", m) for m in entry.errors]
                messages = [message for message in field.errors if isinstance(message, str)]
                summary += [(anchors[field.name], field.label.text, m) for m in messages]
                continue
            anchor = anchors.get(
                field.name, f"{field.id}-0" if field.type == "RadioField" else field.id
            )
            summary += [(anchor, field.label.text, message) for message in field.errors]
        return summary

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Put the service's messages beside their fields (unless parsing already flagged them)."""
        for name, messages in errors.items():
            list_name, _, index = name.partition("-")
            if index:
                entries = self[list_name].entries
                target = entries[int(index)] if int(index) < len(entries) else self[list_name]
            elif name in self._fields:
                target = self[name]
            else:
                target = self.label
            if not target.errors:
                target.errors = list(messages)


class NewKeyForm(KeySettingsForm):
    """The create form: the settings plus the key's type."""

    # The idempotency token: a resent form (reload, Back, double click) makes no second key.
    request_token = HiddenField()

    key_type = RadioField(
        "Type",
        choices=TYPE_CHOICES,
        default="publishable",
        validators=[InputRequired("Choose publishable or secret.")],
    )


class RotateForm(FlaskForm):
    """Rotate a key, choosing when the old one stops."""

    request_token = HiddenField()

    grace = RadioField(
        "When should the old key stop working?",
        choices=[SelectChoice(value, label) for value, label in service.GRACE_LABELS.items()],
        default="now",
        validators=[InputRequired("Choose when the old key stops.")],
    )


class ConfirmForm(FlaskForm):
    """A confirmation (revoke) that only needs its CSRF token."""


def default_scopes(key_type: str) -> list[str]:
    """The SPEC's default scopes for a key type."""
    return list(scopes.DEFAULT_SCOPES.get(key_type, ()))


def is_key_type(value: str | None) -> bool:
    """Whether `value` names a key type."""
    return value in tokens.KEY_TYPES
