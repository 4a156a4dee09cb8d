"""Webhook endpoints and their delivery log, as the back office sees them."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field

from portal.api.schemas.base import ResponseModel, Timestamp, list_of
from portal.webhooks import models as orm
from portal.webhooks.service import EndpointCreate, EndpointUpdate

__all__ = ["EndpointCreate", "EndpointUpdate", "WebhookDelivery", "WebhookEndpoint"]


class WebhookEndpoint(ResponseModel):
    """Where the store's events go. The signing secret is only in create and rotate answers."""

    id: int
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: Timestamp | None
    created_at: Timestamp

    @classmethod
    def of(cls, endpoint: orm.WebhookEndpoint) -> Self:
        """The endpoint as the API shows it (never its secret)."""
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=list(endpoint.event_types),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            failing_since=endpoint.failing_since,
            created_at=endpoint.created_at,
        )


class WebhookEndpointWithSecret(WebhookEndpoint):
    """A new endpoint, or one whose secret was just rotated: the only time the secret shows."""

    secret: str = Field(description="`whsec_…`: verify signatures with it. Shown only now.")


class WebhookDelivery(ResponseModel):
    """One attempt to deliver one event to the endpoint."""

    id: int
    object: Literal["webhook_delivery"] = "webhook_delivery"
    event_id: str = Field(description="Sent as `webhook-id`; the same for every attempt.")
    event_type: str
    attempt: int
    state: Literal["pending", "succeeded", "failed", "given_up"]
    due_at: Timestamp
    attempted_at: Timestamp | None
    status_code: int | None
    latency_ms: int | None
    response_excerpt: str | None = Field(description="The first 1 KB of the response body.")
    error: str | None

    @classmethod
    def of(cls, delivery: orm.WebhookDelivery) -> Self:
        """The delivery as the API shows it."""
        from portal.webhooks.delivery import delivery_summary

        return cls(**delivery_summary(delivery))


WebhookEndpointList = list_of(WebhookEndpoint)
WebhookDeliveryList = list_of(WebhookDelivery)
