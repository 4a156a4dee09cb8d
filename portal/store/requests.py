"""The bodies the store accepts, as pydantic models: strict parsing with messages that name
the field. The API parses requests with them and documents them (their JSON Schema is the
OpenAPI document's); the store services take them, or plain mappings they parse."""

from __future__ import annotations

import types
from typing import Annotated, Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from portal.accounts.service import normalize_email
from portal.store.common import (
    CART_ID_MAX,
    DESCRIPTION_MAX,
    EMAIL_MAX,
    ID_MAX,
    INVENTORY_MAX,
    NAME_MAX,
    PRICE_MAX,
    QUANTITY_MAX,
    SKU_MAX,
    InvalidField,
)
from portal.store.customers import is_valid_email


def _drop_absent_defaults(schema: dict[str, Any]) -> None:
    """`None` as a default means "not given" (PATCH): it is no value a client should send."""
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None and "anyOf" not in field:
            del field["default"]


class RequestModel(BaseModel):
    """A request body: unknown fields refused, JSON types strict (a boolean is no integer).

    Each field's `description` says what it accepts, in the words error messages use:
    "price must be <description>."
    """

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_drop_absent_defaults)
    # What the body is, for messages such as "colour is not a product field".
    object_name: ClassVar[str] = "request"

    @classmethod
    def parse(cls, data: Any) -> Self:
        """The body as this model, or InvalidField naming the first bad field."""
        if isinstance(data, cls):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            field, message = describe_error(cls, error)
            raise InvalidField(field, message) from None


# -- error messages -------------------------------------------------------------------------

_BOUND_ERRORS = {"less_than_equal": "le", "less_than": "lt"}
_OBJECT_ERRORS = {"model_type", "model_attributes_type", "dict_type"}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (directly, in a list, or optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin in (list, Union, types.UnionType, Annotated):
        for argument in get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _locate(
    model: type[RequestModel], loc: tuple[int | str, ...]
) -> tuple[str, type[BaseModel], FieldInfo | None]:
    """The dotted path of an error's location, the model it is in, and its field."""
    path = ""
    current: type[BaseModel] = model
    field: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            if field is not None and _model_in(field.annotation) is None:
                break  # an item of a list of plain values: name the list
            path += f"[{part}]"
            continue
        owner = _model_in(field.annotation) if field is not None else current
        current = owner or current
        path = f"{path}.{part}" if path else part
        field = current.model_fields.get(part)
        if field is None:
            break
    return path or "body", current, field


def _message(model: type[RequestModel], error: ErrorDetails) -> tuple[str, str]:
    path, owner, field = _locate(model, tuple(error["loc"]))
    kind = error["type"]
    context = error.get("ctx") or {}
    accepts = field.description if field is not None else None
    if kind == "missing":
        return path, f"{path} is required."
    if kind == "extra_forbidden":
        what = getattr(owner, "object_name", "request")
        expected = ", ".join(owner.model_fields)
        return path, f"{path} is not a {what} field (expected: {expected})."
    if kind in _OBJECT_ERRORS:
        return path, f"{path} must be a JSON object."
    if kind == "string_too_long":
        return path, f"{path} must be at most {context['max_length']} characters."
    if kind in _BOUND_ERRORS:
        return path, f"{path} must be at most {context[_BOUND_ERRORS[kind]]}."
    blank = error.get("input") is None or (
        kind == "string_too_short" and context.get("min_length") == 1
    )
    if accepts and blank:
        return path, f"{path} is required and must be {accepts}."
    if accepts:
        return path, f"{path} must be {accepts}."
    return path, f"{path}: {error['msg']}."


def describe_error(model: type[RequestModel], error: ValidationError) -> tuple[str, str]:
    """(field path, message) for the first problem: unknown fields first, then field order."""
    problems = sorted(error.errors(), key=lambda item: item["type"] != "extra_forbidden")
    return _message(model, problems[0])


# -- products

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


# -- carts

ProductId = Annotated[int, Field(ge=1, le=ID_MAX, description="a product id", examples=[42])]
Quantity = Annotated[
    int,
    Field(ge=1, le=QUANTITY_MAX, description=f"an integer from 1 to {QUANTITY_MAX}", examples=[2]),
]


class CartItemCreate(RequestModel):
    """A product to put in a cart; adding one already there raises its quantity."""

    object_name: ClassVar[str] = "cart item"

    product_id: ProductId
    quantity: Quantity = 1


class CartCreate(RequestModel):
    """A new cart, empty or with items (all of them are added, or none)."""

    object_name: ClassVar[str] = "cart"

    items: list[CartItemCreate] = Field(
        default_factory=list, description="a list of {product_id, quantity} objects"
    )


# -- checkouts


def _valid_email(value: str) -> str:
    email = normalize_email(value)
    if not is_valid_email(email):
        raise ValueError("not an email address")
    return email


class CheckoutCreate(RequestModel):
    """Check out a cart for a shopper's email."""

    object_name: ClassVar[str] = "checkout"

    cart_id: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=CART_ID_MAX),
        Field(description="a cart id", examples=["cart_8fJ2kQ0aZx4LmN7pR1sT3uVw"]),
    ]
    email: Annotated[
        str,
        AfterValidator(_valid_email),
        Field(
            max_length=EMAIL_MAX,
            description="a valid email address",
            examples=["ann@example.com"],
        ),
    ]
