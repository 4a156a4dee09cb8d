"""Forms of the webhook pages (CSRF through Flask-WTF); the service owns every rule."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectMultipleField, TextAreaField, URLField
from wtforms.widgets import CheckboxInput, ListWidget

from portal.webhooks.models import EVENT_TYPES, WebhookEndpoint


class EventTypesField(SelectMultipleField):
    """A checkbox per event type."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EndpointForm(FlaskForm):
    """Create or edit an endpoint."""

    url = URLField("Endpoint URL")
    description = TextAreaField("Description")
    event_types = EventTypesField("Events to send", choices=[SelectChoice(t) for t in EVENT_TYPES])
    enabled = BooleanField("Enabled", default=True)

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointForm:
        """The form filled with an endpoint's settings."""
        return cls(
            formdata=None,
            data={
                "url": endpoint.url,
                "description": endpoint.description,
                "event_types": list(endpoint.event_types),
                "enabled": endpoint.enabled,
            },
        )

    def to_body(self) -> dict[str, Any]:
        """The submitted values as the service takes them."""
        return {
            "url": (self.url.data or "").strip(),
            "description": (self.description.data or "").strip(),
            "event_types": list(self.event_types.data or []),
            "enabled": bool(self.enabled.data),
        }

    def has_errors(self) -> bool:
        """Whether any field shows an error."""
        return any(field.errors for field in self)


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token."""
