"""Back-office resources for secret keys: products, orders, customers, usage and sales."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import request, url_for

from portal.api import bp
from portal.api.auth import require_scope
from portal.api.errors import ApiError, parse_body
from portal.api.pagination import bool_param, list_response, page_params
from portal.api.schemas.customers import Customer, CustomerList
from portal.api.schemas.orders import Order, OrderList
from portal.api.schemas.products import AdminProduct, AdminProductList, ProductCreate, ProductUpdate
from portal.api.schemas.usage import Usage
from portal.api.tenancy import current_tenant
from portal.keys import service as keys
from portal.store import customers, orders, products
from portal.store.common import ID_MAX
from portal.usage import stats

MAX_USAGE_RANGE_DAYS = 400
# Usage ranges stay within years every date computation can represent.
USAGE_EARLIEST = datetime(2000, 1, 1)
USAGE_LATEST = datetime(9000, 1, 1)


@bp.get("/admin/products")
@require_scope("products:read")
def list_products() -> dict[str, Any]:
    """Every product, published or not, with inventory; filter `published=true|false`."""
    tenant = current_tenant()
    params = page_params()
    page = products.list_products(
        tenant, params.limit, params.starting_after, published=bool_param("published")
    )
    return list_response(AdminProductList, page, lambda product: AdminProduct.of(product, tenant))


@bp.post("/admin/products")
@require_scope("products:write")
def create_product() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a product. A market-scoped key creates it in its own market."""
    tenant = current_tenant()
    product = products.create_product(tenant, parse_body(ProductCreate))
    location = url_for("api.get_product", product_id=product.id)
    return AdminProduct.of(product, tenant).body(), 201, {"Location": location}


@bp.get(f"/admin/products/<int(max={ID_MAX}):product_id>")
@require_scope("products:read")
def get_product(product_id: int) -> dict[str, Any]:
    """One product, published or not."""
    tenant = current_tenant()
    return AdminProduct.of(products.get_product(tenant, product_id), tenant).body()


@bp.patch(f"/admin/products/<int(max={ID_MAX}):product_id>")
@require_scope("products:write")
def update_product(product_id: int) -> dict[str, Any]:
    """Change the fields given in the body; the others stay as they are.

    A market-scoped key may change only products sold in its market alone (403 otherwise).
    """
    tenant = current_tenant()
    product = products.update_product(tenant, product_id, parse_body(ProductUpdate))
    return AdminProduct.of(product, tenant).body()


@bp.delete(f"/admin/products/<int(max={ID_MAX}):product_id>")
@require_scope("products:write")
def delete_product(product_id: int) -> tuple[str, int]:
    """Delete a product (orders keep their copy of its name and price).

    A market-scoped key may delete only products sold in its market alone (403 otherwise).
    """
    products.delete_product(current_tenant(), product_id)
    return "", 204


@bp.get("/admin/orders")
@require_scope("orders:read")
def list_orders() -> dict[str, Any]:
    """Orders by id; filter `status=pending|placed|fulfilled|cancelled|expired`."""
    params = page_params()
    page = orders.list_orders(
        current_tenant(), params.limit, params.starting_after, status=request.args.get("status")
    )
    return list_response(OrderList, page, Order.of)


@bp.get(f"/admin/orders/<int(max={ID_MAX}):order_id>")
@require_scope("orders:read")
def get_order(order_id: int) -> dict[str, Any]:
    """One order with its lines."""
    return Order.of(orders.get_order(current_tenant(), order_id)).body()


@bp.post(f"/admin/orders/<int(max={ID_MAX}):order_id>/fulfill")
@require_scope("orders:write")
def fulfill_order(order_id: int) -> dict[str, Any]:
    """Mark a pending or placed order fulfilled."""
    return Order.of(orders.fulfill_order(current_tenant(), order_id)).body()


@bp.post(f"/admin/orders/<int(max={ID_MAX}):order_id>/cancel")
@require_scope("orders:write")
def cancel_order(order_id: int) -> dict[str, Any]:
    """Cancel a pending or placed order; its stock goes back on the shelf."""
    return Order.of(orders.cancel_order(current_tenant(), order_id)).body()


@bp.get("/admin/customers")
@require_scope("customers:read")
def list_customers() -> dict[str, Any]:
    """Customers by id (for a market-scoped key: those who ordered in its market)."""
    params = page_params()
    page = customers.list_customers(current_tenant(), params.limit, params.starting_after)
    return list_response(CustomerList, page, Customer.of)


@bp.get("/admin/usage")
@require_scope("analytics:read")
def get_usage() -> dict[str, Any]:
    """Usage per key and in total between `start` and `end` (default: 30 days), and sales."""
    tenant = current_tenant()
    start, end = usage_range()
    api_keys = sorted(
        keys.list_keys(tenant.merchant_id, market_id=tenant.market_id), key=lambda key: key.id
    )
    total = stats.summarize(
        merchant_id=tenant.merchant_id,
        key_ids=[key.id for key in api_keys],
        start=start,
        end=end,
        recent=False,
    ).as_dict()
    per_key = [
        {
            "id": key.id,
            "label": key.label,
            "type": key.key_type,
            "state": key.state,
            "last_used_at": key.last_used_at,
            "usage": stats.summarize(
                merchant_id=tenant.merchant_id, key_id=key.id, start=start, end=end, recent=False
            ).as_dict(),
        }
        for key in api_keys
    ]
    return Usage.build(total, per_key, orders.sales_figures(tenant)).body()


def _moment(name: str, raw: str) -> datetime:
    """One bound of the usage range, as naive UTC, or a 400 naming the parameter."""
    invalid = ApiError(
        400, "invalid_request", f"{name} must be an ISO 8601 date or time, e.g. 2026-11-01."
    )
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise invalid from None
    if not USAGE_EARLIEST <= moment <= USAGE_LATEST:
        raise ApiError(
            400,
            "invalid_request",
            f"{name} must be between {USAGE_EARLIEST:%Y-%m-%d} and {USAGE_LATEST:%Y-%m-%d}.",
        )
    return moment


def usage_range() -> tuple[datetime | None, datetime | None]:
    """The `start` and `end` query parameters (ISO 8601 dates or times, UTC)."""
    bounds = []
    for name in ("start", "end"):
        raw = request.args.get(name)
        bounds.append(_moment(name, raw) if raw else None)
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
