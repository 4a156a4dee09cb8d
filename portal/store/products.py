"""Products and markets: the catalog a storefront sells, and the back office's product writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.accounts.models import Market
from portal.database import utcnow
from portal.extensions import db
from portal.store import events
from portal.store.common import (
    InvalidField,
    OtherMarketsAffected,
    Page,
    ProductNotFound,
    Tenant,
    paginate,
    transaction,
)
from portal.store.models import CartItem, OrderItem, Product
from portal.store.requests import ProductCreate, ProductUpdate


def products_of(tenant: Tenant) -> Select[tuple[Product]]:
    """Every product the tenant may see in the admin API (its market's only, if it has one)."""
    query = select(Product).where(Product.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Product.markets.any(Market.id == tenant.market_id))
    return query.options(selectinload(Product.markets))


def catalog_of(merchant_id: int, market_id: int | None) -> Select[tuple[Product]]:
    """Published products on sale in a market (any of the merchant's, when market_id is None)."""
    query = select(Product).where(Product.merchant_id == merchant_id, Product.published.is_(True))
    if market_id is not None:
        query = query.where(Product.markets.any(Market.id == market_id))
    return query.options(selectinload(Product.markets))


def list_catalog(
    tenant: Tenant, limit: int = 20, starting_after: int | None = None
) -> Page[Product]:
    """Published products the tenant's storefront may sell, by id."""
    return paginate(
        catalog_of(tenant.merchant_id, tenant.market_id), Product.id, limit, starting_after
    )


def get_catalog_product(tenant: Tenant, product_id: int) -> Product:
    """One published product of the tenant's catalog, or ProductNotFound."""
    product = db.session.scalar(
        catalog_of(tenant.merchant_id, tenant.market_id).where(Product.id == product_id)
    )
    if product is None:
        raise ProductNotFound(f"No such product: {product_id}.")
    return product


def list_products(
    tenant: Tenant,
    limit: int = 20,
    starting_after: int | None = None,
    published: bool | None = None,
) -> Page[Product]:
    """Every product of the tenant, published or not, by id."""
    query = products_of(tenant)
    if published is not None:
        query = query.where(Product.published.is_(published))
    return paginate(query, Product.id, limit, starting_after)


def get_product(tenant: Tenant, product_id: int) -> Product:
    """One product of the tenant, published or not, or ProductNotFound."""
    product = db.session.scalar(products_of(tenant).where(Product.id == product_id))
    if product is None:
        raise ProductNotFound(f"No such product: {product_id}.")
    return product


def _sku_taken(sku: str) -> InvalidField:
    return InvalidField("sku", f"sku {sku!r} is already used by another product.")


def _check_sku(tenant: Tenant, sku: str | None, product: Product | None) -> None:
    """A SKU is unique per merchant (a product may keep its own)."""
    if sku is None:
        return
    query = select(Product.id).where(Product.merchant_id == tenant.merchant_id, Product.sku == sku)
    if product is not None:
        query = query.where(Product.id != product.id)
    if db.session.scalar(query) is not None:
        raise _sku_taken(sku)


def _resolve_markets(tenant: Tenant, codes: list[str]) -> list[Market]:
    """Market codes as the merchant's markets; a market-scoped tenant may name only its own."""
    query = select(Market).where(Market.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Market.id == tenant.market_id)
    visible = {market.code.upper(): market for market in db.session.scalars(query)}
    chosen: dict[int, Market] = {}
    for code in codes:
        market = visible.get(code.strip().upper())
        if market is None:
            raise InvalidField("markets", f"markets contains an unknown market code: {code!r}.")
        chosen[market.id] = market
    if tenant.market_id is not None and tenant.market_id not in chosen:
        own = next(iter(visible.values()))
        raise InvalidField(
            "markets", f"markets must include {own.code}: this key is limited to that market."
        )
    return list(chosen.values())


def _own_market(tenant: Tenant) -> list[Market]:
    return list(
        db.session.scalars(
            select(Market).where(
                Market.id == tenant.market_id, Market.merchant_id == tenant.merchant_id
            )
        )
    )


def _refuse_shared(tenant: Tenant, product: Product, verb: str) -> None:
    """A market-scoped tenant changes only what belongs to its market alone."""
    if tenant.market_id is None:
        return
    others = sorted(market.code for market in product.markets if market.id != tenant.market_id)
    if others:
        raise OtherMarketsAffected(
            f"Product {product.id} is also sold in {', '.join(others)}; this key is limited to "
            f"one market, so it cannot {verb} it. A key for all markets can.",
            others,
        )


def _flush_product(sku: str | None) -> None:
    """Flush, turning a lost race on the SKU's unique constraint into InvalidField."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _sku_taken(sku or "") from None


def create_product(tenant: Tenant, data: ProductCreate | Mapping[str, Any]) -> Product:
    """Create a product from its body, in one transaction."""
    body = ProductCreate.parse(data)
    with transaction():
        _check_sku(tenant, body.sku, None)
        values = body.model_dump(exclude={"markets"})
        if body.markets is not None:
            values["markets"] = _resolve_markets(tenant, body.markets)
        elif tenant.market_id is not None:
            values["markets"] = _own_market(tenant)  # a market-scoped key creates in its market
        product = Product(merchant_id=tenant.merchant_id, **values)
        db.session.add(product)
        _flush_product(body.sku)
        events.product_event(product, "product.created")
    return product


def update_product(
    tenant: Tenant, product_id: int, data: ProductUpdate | Mapping[str, Any]
) -> Product:
    """Change the fields given in the body, in one transaction."""
    body = ProductUpdate.parse(data)
    with transaction():
        product = get_product(tenant, product_id)
        _refuse_shared(tenant, product, "change")
        values = body.model_dump(include=body.model_fields_set)
        if "sku" in values:
            _check_sku(tenant, body.sku, product)
        if "markets" in values:
            values["markets"] = _resolve_markets(tenant, body.markets)
        for name, value in values.items():
            setattr(product, name, value)
        product.updated_at = utcnow()
        _flush_product(values.get("sku"))
        events.product_event(product, "product.updated")
    return product


def delete_product(tenant: Tenant, product_id: int) -> None:
    """Delete a product and its lines in carts; orders keep their copy of name and price."""
    with transaction():
        product = get_product(tenant, product_id)
        _refuse_shared(tenant, product, "delete")
        events.product_event(product, "product.deleted")
        db.session.execute(delete(CartItem).where(CartItem.product_id == product.id))
        db.session.execute(
            update(OrderItem).where(OrderItem.product_id == product.id).values(product_id=None)
        )
        db.session.delete(product)


def list_markets(
    tenant: Tenant, limit: int = 20, starting_after: int | None = None
) -> Page[Market]:
    """The tenant's markets by id (just its own, for a market-scoped tenant)."""
    query = select(Market).where(Market.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Market.id == tenant.market_id)
    return paginate(query, Market.id, limit, starting_after)


def market_codes(product: Product) -> list[str]:
    """The codes of the markets a product is sold in, sorted."""
    return sorted(market.code for market in product.markets)
