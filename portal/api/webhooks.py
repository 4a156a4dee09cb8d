"""Webhook endpoints for secret keys: `/api/v1/admin/webhooks[/<id>]` and the delivery log."""

from __future__ import annotations

from typing import Any

from portal.api import bp
from portal.api.auth import require_scope
from portal.api.errors import ApiError, parse_body
from portal.api.schemas.base import list_body
from portal.api.schemas.webhooks import (
    EndpointCreate,
    EndpointUpdate,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)
from portal.api.tenancy import current_tenant
from portal.store.common import ID_MAX
from portal.webhooks import delivery as deliveries
from portal.webhooks import service

ENDPOINT = f"/admin/webhooks/<int(max={ID_MAX}):endpoint_id>"


def _tenant_merchant() -> int:
    """Webhooks belong to the whole store: a market-scoped key may not touch them."""
    tenant = current_tenant()
    if tenant.market_id is not None:
        raise ApiError(
            403,
            "insufficient_scope",
            "Webhooks apply to every market; this key is limited to one market. "
            "Use a key for all markets.",
        )
    return tenant.merchant_id


def _endpoint(endpoint_id: int) -> Any:
    try:
        return service.get_endpoint(_tenant_merchant(), endpoint_id)
    except service.EndpointNotFound:
        raise ApiError(404, "not_found", f"No such webhook endpoint: {endpoint_id}.") from None


def _invalid(error: service.WebhookError) -> ApiError:
    return ApiError(400, "invalid_request", error.message)


@bp.get("/admin/webhooks")
@require_scope("webhooks:read")
def list_webhooks() -> dict[str, Any]:
    """The store's webhook endpoints."""
    endpoints = service.list_endpoints(_tenant_merchant())
    return list_body(WebhookEndpointList, [WebhookEndpoint.of(e) for e in endpoints], False)


@bp.post("/admin/webhooks")
@require_scope("webhooks:write")
def create_webhook() -> tuple[dict[str, Any], int]:
    """Create an endpoint; the answer holds its signing secret, shown only this once."""
    merchant_id = _tenant_merchant()
    try:
        endpoint, secret = service.create_endpoint(merchant_id, parse_body(EndpointCreate))
    except service.WebhookError as error:
        raise _invalid(error) from None
    body = WebhookEndpoint.of(endpoint).model_dump()
    return WebhookEndpointWithSecret(**body, secret=secret).body(), 201


@bp.get(ENDPOINT)
@require_scope("webhooks:read")
def get_webhook(endpoint_id: int) -> dict[str, Any]:
    """One endpoint (without its secret)."""
    return WebhookEndpoint.of(_endpoint(endpoint_id)).body()


@bp.patch(ENDPOINT)
@require_scope("webhooks:write")
def update_webhook(endpoint_id: int) -> dict[str, Any]:
    """Change url, description, event_types or enabled."""
    endpoint = _endpoint(endpoint_id)
    try:
        endpoint = service.update_endpoint(endpoint, parse_body(EndpointUpdate))
    except service.WebhookError as error:
        raise _invalid(error) from None
    return WebhookEndpoint.of(endpoint).body()


@bp.delete(ENDPOINT)
@require_scope("webhooks:write")
def delete_webhook(endpoint_id: int) -> tuple[str, int]:
    """Delete an endpoint and its delivery log."""
    service.delete_endpoint(_endpoint(endpoint_id))
    return "", 204


@bp.post(f"{ENDPOINT}/rotate-secret")
@require_scope("webhooks:write")
def rotate_webhook_secret(endpoint_id: int) -> dict[str, Any]:
    """A new signing secret; the old one keeps signing (a second signature) for 24 hours."""
    endpoint = _endpoint(endpoint_id)
    secret = service.rotate_secret(endpoint)
    return WebhookEndpointWithSecret(
        **WebhookEndpoint.of(endpoint).model_dump(), secret=secret
    ).body()


@bp.get(f"{ENDPOINT}/deliveries")
@require_scope("webhooks:read")
def list_webhook_deliveries(endpoint_id: int) -> dict[str, Any]:
    """The endpoint's 50 most recent delivery attempts, newest first."""
    rows = service.deliveries(_endpoint(endpoint_id))
    return list_body(WebhookDeliveryList, [WebhookDelivery.of(row) for row in rows], False)


@bp.post(f"{ENDPOINT}/deliveries/<int(max={ID_MAX}):delivery_id>/retry")
@require_scope("webhooks:write")
def retry_webhook_delivery(endpoint_id: int, delivery_id: int) -> tuple[dict[str, Any], int]:
    """Send a delivery's event again now (a new attempt series); answers the new delivery."""
    endpoint = _endpoint(endpoint_id)
    try:
        original = service.get_delivery(endpoint, delivery_id)
    except service.EndpointNotFound:
        raise ApiError(404, "not_found", f"No such delivery: {delivery_id}.") from None
    again = deliveries.redeliver(original)
    return WebhookDelivery.of(service.get_delivery(endpoint, again.id)).body(), 202


@bp.post(f"{ENDPOINT}/test")
@require_scope("webhooks:write")
def test_webhook(endpoint_id: int) -> tuple[dict[str, Any], int]:
    """Send a `webhook.test` event to this endpoint; answers its delivery."""
    endpoint = _endpoint(endpoint_id)
    delivery = deliveries.send_test_event(endpoint)
    return WebhookDelivery.of(service.get_delivery(endpoint, delivery.id)).body(), 202
