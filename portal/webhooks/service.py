"""Webhook endpoints: create, edit, enable or disable, rotate the secret, delete; the log."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from flask import current_app
from pydantic import AfterValidator, Field, StringConstraints
from sqlalchemy import delete, select

from portal.database import utcnow
from portal.extensions import db
from portal.store.requests import RequestModel
from portal.webhooks.models import (
    EVENT_TYPES,
    WebhookDelivery,
    WebhookEndpoint,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format, not a secret
SECRET_BYTES = 24
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
URL_MAX = 2048
DESCRIPTION_MAX = 500
MAX_ENDPOINTS = 20
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class WebhookError(Exception):
    """A webhook rule was broken; `field` names the input, `message` says what to do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class EndpointNotFound(LookupError):
    """No such endpoint for this merchant (another merchant's included)."""


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise ValueError("bad url")
    production = current_app.config.get("PORTAL_ENV") == "production"
    if parts.scheme == "https" or (
        parts.scheme == "http" and host in LOCAL_HOSTS and not production
    ):
        return value
    raise ValueError("bad url")


def _check_events(value: list[str]) -> list[str]:
    unknown = [name for name in value if name not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {unknown}")
    return [name for name in EVENT_TYPES if name in value]


EndpointUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_MAX),
    AfterValidator(_check_url),
    Field(
        description="an https URL (http only to localhost outside production)",
        examples=["https://backoffice.example.com/hooks"],
    ),
]
Description = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX),
    Field(description="a string", examples=["Order sync"]),
]
EventTypes = Annotated[
    list[str],
    AfterValidator(_check_events),
    Field(
        min_length=1,
        description="a non-empty list of event types: " + ", ".join(EVENT_TYPES),
        examples=[["order.placed", "order.cancelled"]],
    ),
]


class EndpointCreate(RequestModel):
    """A new endpoint: where to send which events."""

    object_name: ClassVar[str] = "webhook endpoint"

    url: EndpointUrl
    description: Description = ""
    event_types: EventTypes
    enabled: Annotated[bool, Field(description="true or false")] = True


class EndpointUpdate(RequestModel):
    """A change to an endpoint: only the fields given change."""

    object_name: ClassVar[str] = "webhook endpoint"

    url: EndpointUrl = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    event_types: EventTypes = None  # type: ignore[assignment]
    enabled: Annotated[bool, Field(description="true or false")] = None  # type: ignore[assignment]


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def list_endpoints(merchant_id: int) -> list[WebhookEndpoint]:
    """The merchant's endpoints, oldest first."""
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.merchant_id == merchant_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(merchant_id: int, endpoint_id: int) -> WebhookEndpoint:
    """One of the merchant's endpoints, or EndpointNotFound."""
    endpoint = db.session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.merchant_id == merchant_id
        )
    )
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    return endpoint


def create_endpoint(
    merchant_id: int, data: EndpointCreate | Mapping[str, Any]
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret, shown to the merchant only now."""
    body = EndpointCreate.parse(data)
    if len(list_endpoints(merchant_id)) >= MAX_ENDPOINTS:
        raise WebhookError("url", f"A store has at most {MAX_ENDPOINTS} webhook endpoints.")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        merchant_id=merchant_id,
        url=body.url,
        description=body.description,
        event_types=body.event_types,
        enabled=body.enabled,
        secret=secret,
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint, secret


def update_endpoint(
    endpoint: WebhookEndpoint, data: EndpointUpdate | Mapping[str, Any]
) -> WebhookEndpoint:
    """Change the fields given; enabling an endpoint clears its failure record."""
    change = EndpointUpdate.parse(data)
    for name in change.model_fields_set:
        value = getattr(change, name)
        if value is None:
            raise WebhookError(name, f"{name} must not be null.")
        setattr(endpoint, name, value)
    if change.enabled:
        endpoint.failing_since = None
        endpoint.disabled_reason = None
    db.session.commit()
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing for 24 hours (both signatures are sent)."""
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utcnow() + PREVIOUS_SECRET_GRACE
    endpoint.secret = secret
    db.session.commit()
    return secret


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint and its delivery log."""
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db.session.delete(endpoint)
    db.session.commit()


def deliveries(endpoint: WebhookEndpoint, limit: int = 50) -> list[WebhookDelivery]:
    """The endpoint's most recent deliveries, newest first."""
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
    )


def get_delivery(endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    """One delivery of the endpoint, or EndpointNotFound."""
    delivery = db.session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id)
        # The worker (or, in immediate mode, a nested session) may have just written it.
        .execution_options(populate_existing=True)
    )
    if delivery is None:
        raise EndpointNotFound(delivery_id)
    return delivery
