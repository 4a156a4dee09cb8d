"""Products and markets: the bodies that create and change products, and what the API shows."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints

from portal.accounts.models import Market as MarketRow
from portal.api.schemas.base import RequestModel, ResponseModel, Timestamp, list_of
from portal.store import models as orm
from portal.store.common import (
    DESCRIPTION_MAX,
    INVENTORY_MAX,
    NAME_MAX,
    PRICE_MAX,
    SKU_MAX,
    Tenant,
)

CURRENCY_PATTERN = r"^[A-Za-z]{3}$"


def _none_if_blank(value: str | None) -> str | None:
    return value or None


def _empty_if_none(value: str | None) -> str:
    return value or ""


ProductName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    Field(description="a non-empty string", examples=["Enamel mug"]),
]
ProductDescription = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX)] | None,
    AfterValidator(_empty_if_none),
    Field(description="a string", examples=["350 ml, white with a blue rim."]),
]
Price = Annotated[
    int,
    Field(ge=0, le=PRICE_MAX, description="a non-negative integer (minor units)", examples=[1800]),
]
Currency = Annotated[
    str,
    StringConstraints(pattern=CURRENCY_PATTERN, to_upper=True),
    Field(description="a three-letter ISO 4217 code, such as USD", examples=["USD"]),
]
Sku = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=SKU_MAX)] | None,
    AfterValidator(_none_if_blank),
    Field(description="a string or null (unique per merchant)", examples=["MUG-02"]),
]
Inventory = Annotated[
    int, Field(ge=0, le=INVENTORY_MAX, description="a non-negative integer", examples=[120])
]
Published = Annotated[bool, Field(description="true or false")]
MarketCodes = Annotated[
    list[str],
    Field(
        description='a list of market codes, such as ["US"]',
        examples=[["US", "EU"]],
    ),
]


class ProductCreate(RequestModel):
    """A new product; `name`, `price` and `currency` are required."""

    object_name: ClassVar[str] = "product"

    name: ProductName
    description: ProductDescription = ""
    price: Price
    currency: Currency
    sku: Sku = None
    inventory: Inventory = 0
    published: Published = False
    markets: MarketCodes = None  # type: ignore[assignment]


class ProductUpdate(RequestModel):
    """A change to a product: only the fields given change."""

    object_name: ClassVar[str] = "product"

    name: ProductName = None  # type: ignore[assignment]
    description: ProductDescription = None
    price: Price = None  # type: ignore[assignment]
    currency: Currency = None  # type: ignore[assignment]
    sku: Sku = None
    inventory: Inventory = None  # type: ignore[assignment]
    published: Published = None  # type: ignore[assignment]
    markets: MarketCodes = None  # type: ignore[assignment]


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
