"""Back-office resources for secret keys: products, orders, customers, usage and sales."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import request, url_for

from portal.api import bp, serializers
from portal.api.auth import require_scope
from portal.api.errors import ApiError, json_body
from portal.api.pagination import bool_param, list_response, page_params
from portal.keys import service as keys
from portal.store import service as store
from portal.usage import stats

MAX_USAGE_RANGE_DAYS = 400


@bp.get("/admin/products")
@require_scope("products:read")
def list_products() -> dict[str, Any]:
    """Every product, published or not, with inventory; filter `published=true|false`."""
    tenant = serializers.current_tenant()
    params = page_params()
    page = store.list_products(
        tenant, params.limit, params.starting_after, published=bool_param("published")
    )
    return list_response(page, lambda product: serializers.admin_product(product, tenant))


@bp.post("/admin/products")
@require_scope("products:write")
def create_product() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a product."""
    tenant = serializers.current_tenant()
    product = store.create_product(tenant, json_body())
    location = url_for("api.get_product", product_id=product.id)
    return serializers.admin_product(product, tenant), 201, {"Location": location}


@bp.get(f"/admin/products/<int(max={store.ID_MAX}):product_id>")
@require_scope("products:read")
def get_product(product_id: int) -> dict[str, Any]:
    """One product, published or not."""
    tenant = serializers.current_tenant()
    return serializers.admin_product(store.get_product(tenant, product_id), tenant)


@bp.patch(f"/admin/products/<int(max={store.ID_MAX}):product_id>")
@require_scope("products:write")
def update_product(product_id: int) -> dict[str, Any]:
    """Change the fields given in the body; the others stay as they are."""
    tenant = serializers.current_tenant()
    product = store.update_product(tenant, product_id, json_body())
    return serializers.admin_product(product, tenant)


@bp.delete(f"/admin/products/<int(max={store.ID_MAX}):product_id>")
@require_scope("products:write")
def delete_product(product_id: int) -> tuple[str, int]:
    """Delete a product (orders keep their copy of its name and price)."""
    store.delete_product(serializers.current_tenant(), product_id)
    return "", 204


@bp.get("/admin/orders")
@require_scope("orders:read")
def list_orders() -> dict[str, Any]:
    """Orders by id; filter `status=pending|fulfilled|cancelled`."""
    params = page_params()
    page = store.list_orders(
        serializers.current_tenant(),
        params.limit,
        params.starting_after,
        status=request.args.get("status"),
    )
    return list_response(page, serializers.order)


@bp.get(f"/admin/orders/<int(max={store.ID_MAX}):order_id>")
@require_scope("orders:read")
def get_order(order_id: int) -> dict[str, Any]:
    """One order with its lines."""
    return serializers.order(store.get_order(serializers.current_tenant(), order_id))


@bp.post(f"/admin/orders/<int(max={store.ID_MAX}):order_id>/fulfill")
@require_scope("orders:write")
def fulfill_order(order_id: int) -> dict[str, Any]:
    """Mark a pending order fulfilled."""
    return serializers.order(store.fulfill_order(serializers.current_tenant(), order_id))


@bp.post(f"/admin/orders/<int(max={store.ID_MAX}):order_id>/cancel")
@require_scope("orders:write")
def cancel_order(order_id: int) -> dict[str, Any]:
    """Cancel a pending order; its inventory goes back on the shelf."""
    return serializers.order(store.cancel_order(serializers.current_tenant(), order_id))


@bp.get("/admin/customers")
@require_scope("customers:read")
def list_customers() -> dict[str, Any]:
    """Customers by id (for a market-scoped key: those who ordered in its market)."""
    params = page_params()
    page = store.list_customers(serializers.current_tenant(), params.limit, params.starting_after)
    return list_response(page, serializers.customer)


@bp.get("/admin/usage")
@require_scope("analytics:read")
def get_usage() -> dict[str, Any]:
    """Usage per key and in total between `start` and `end` (default: 30 days), and sales."""
    tenant = serializers.current_tenant()
    start, end = usage_range()
    api_keys = sorted(
        keys.list_keys(tenant.merchant_id, market_id=tenant.market_id), key=lambda key: key.id
    )
    key_ids = [key.id for key in api_keys]
    total = stats.summarize(
        merchant_id=tenant.merchant_id, key_ids=key_ids, start=start, end=end, recent=False
    )
    return {
        "object": "usage",
        "start": total.as_dict()["start"],
        "end": total.as_dict()["end"],
        "total": total.as_dict(),
        "keys": [
            {
                "id": key.id,
                "label": key.label,
                "type": key.key_type,
                "state": key.state,
                "last_used_at": serializers.timestamp(key.last_used_at),
                "usage": stats.summarize(
                    merchant_id=tenant.merchant_id,
                    key_id=key.id,
                    start=start,
                    end=end,
                    recent=False,
                ).as_dict(),
            }
            for key in api_keys
        ],
        "sales": store.sales_figures(tenant),
    }


def usage_range() -> tuple[datetime | None, datetime | None]:
    """The `start` and `end` query parameters (ISO 8601 dates or times, UTC)."""
    bounds = []
    for name in ("start", "end"):
        raw = request.args.get(name)
        if not raw:
            bounds.append(None)
            continue
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                400, "invalid_request", f"{name} must be an ISO 8601 date or time, e.g. 2026-11-01."
            ) from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        bounds.append(moment)
    start, end = bounds
    if start and end and start >= end:
        raise ApiError(400, "invalid_request", "start must be before end.")
    if start and end and end - start > timedelta(days=MAX_USAGE_RANGE_DAYS):
        raise ApiError(
            400,
            "invalid_request",
            f"The range from start to end is at most {MAX_USAGE_RANGE_DAYS} days.",
        )
    return start, end
