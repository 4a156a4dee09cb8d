"""Products and markets: the bodies that create and change products, and what the API shows."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field

from portal.accounts.models import Market as MarketRow
from portal.api.schemas.base import ResponseModel, Timestamp, list_of
from portal.store import models as orm
from portal.store.common import (
    Tenant,
)
from portal.store.requests import ProductCreate, ProductUpdate  # noqa: F401 - re-exported


def visible_markets(product: orm.Product, tenant: Tenant) -> list[str]:
    """The product's market codes, without the ones a market-scoped key may not see."""
    return sorted(
        market.code
        for market in product.markets
        if tenant.market_id is None or market.id == tenant.market_id
    )


class Product(ResponseModel):
    """A product as a storefront sees it: whether it is in stock, not how many."""

    id: int
    object: Literal["product"] = "product"
    name: str
    description: str
    price: int = Field(ge=0, description="Minor units of the currency.")
    currency: str = Field(pattern="^[A-Z]{3}$", description="ISO 4217, upper case.")
    sku: str | None
    in_stock: bool
    markets: list[str] = Field(description="Codes of the markets it is sold in.")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, product: orm.Product, tenant: Tenant) -> Self:
        """The product as the tenant may see it."""
        return cls(**_product_fields(product, tenant))


class AdminProduct(Product):
    """A product as the back office sees it, with inventory and publication."""

    object: Literal["product"] = "product"
    inventory: int = Field(ge=0)
    published: bool

    @classmethod
    def of(cls, product: orm.Product, tenant: Tenant) -> Self:
        """The product as the tenant may see it."""
        return cls(
            **_product_fields(product, tenant),
            inventory=product.inventory,
            published=product.published,
        )


def _product_fields(product: orm.Product, tenant: Tenant) -> dict[str, object]:
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "price": product.price,
        "currency": product.currency,
        "sku": product.sku,
        "in_stock": product.inventory > 0,
        "markets": visible_markets(product, tenant),
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


class Market(ResponseModel):
    """A market of the store."""

    id: int
    object: Literal["market"] = "market"
    code: str = Field(examples=["US"])
    name: str = Field(examples=["United States"])

    @classmethod
    def of(cls, market: MarketRow) -> Self:
        """The market as the API shows it."""
        return cls(id=market.id, code=market.code, name=market.name)


ProductList = list_of(Product)
AdminProductList = list_of(AdminProduct)
MarketList = list_of(Market)
