"""Storefront catalog: published products (and markets) the key's market sells."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from portal.api import bp
from portal.api.auth import require_scope
from portal.api.pagination import list_response, page_params
from portal.api.schemas.products import Market, MarketList, Product, ProductList
from portal.api.tenancy import current_tenant
from portal.store import products
from portal.store.common import ID_MAX


@bp.get("/catalog/products")
@require_scope("catalog:read")
def list_catalog_products() -> Response:
    """Published products on sale in the key's market (every market without one), by id."""
    tenant = current_tenant()
    params = page_params()
    page = products.list_catalog(tenant, params.limit, params.starting_after)
    return cacheable(list_response(ProductList, page, lambda product: Product.of(product, tenant)))


@bp.get(f"/catalog/products/<int(max={ID_MAX}):product_id>")
@require_scope("catalog:read")
def get_catalog_product(product_id: int) -> Response:
    """One published product of the key's catalog."""
    tenant = current_tenant()
    return cacheable(Product.of(products.get_catalog_product(tenant, product_id), tenant).body())


DEFAULT_MAX_AGE_SECONDS = 30


def cacheable(body: dict[str, Any]) -> Response:
    """The body with an ETag and `Cache-Control: private, max-age`; 304 on If-None-Match."""
    response = jsonify(body)
    max_age = int(current_app.config.get("CATALOG_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))
    response.headers["Cache-Control"] = f"private, max-age={max_age}"
    # Each key (and market) sees its own catalog: a cache must keep them apart.
    response.vary.update(("Authorization", "X-API-Key", "X-Site-ID"))
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/catalog/markets")
@require_scope("catalog:read")
def list_catalog_markets() -> dict[str, Any]:
    """The store's markets the key may sell in (only its own, for a market-scoped key), by id."""
    params = page_params()
    page = products.list_markets(current_tenant(), params.limit, params.starting_after)
    return list_response(MarketList, page, Market.of)
