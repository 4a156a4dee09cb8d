"""Storefront catalog: published products (and markets) the key's market sells."""

from __future__ import annotations

from typing import Any

from portal.api import bp
from portal.api.auth import require_scope
from portal.api.pagination import list_response, page_params
from portal.api.schemas.products import Market, MarketList, Product, ProductList
from portal.api.tenancy import current_tenant
from portal.store import products
from portal.store.common import ID_MAX


@bp.get("/catalog/products")
@require_scope("catalog:read")
def list_catalog_products() -> dict[str, Any]:
    """Published products on sale in the key's market (every market without one), by id."""
    tenant = current_tenant()
    params = page_params()
    page = products.list_catalog(tenant, params.limit, params.starting_after)
    return list_response(ProductList, page, lambda product: Product.of(product, tenant))


@bp.get(f"/catalog/products/<int(max={ID_MAX}):product_id>")
@require_scope("catalog:read")
def get_catalog_product(product_id: int) -> dict[str, Any]:
    """One published product of the key's catalog."""
    tenant = current_tenant()
    return Product.of(products.get_catalog_product(tenant, product_id), tenant).body()


@bp.get("/catalog/markets")
@require_scope("catalog:read")
def list_catalog_markets() -> dict[str, Any]:
    """The store's markets the key may sell in (only its own, for a market-scoped key), by id."""
    params = page_params()
    page = products.list_markets(current_tenant(), params.limit, params.starting_after)
    return list_response(MarketList, page, Market.of)
