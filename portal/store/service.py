"""The store: products, carts, checkouts, orders and customers. The service owns rules and commits.

Every function takes a Tenant (a merchant, and one of its markets or all of them) and never
shows or touches anything outside it: another tenant's object is indistinguishable from one
that does not exist. Functions raise StoreError subclasses, never HTTP errors.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.accounts.models import Market
from portal.database import utcnow
from portal.extensions import db
from portal.keys.tokens import BASE62
from portal.store.models import (
    Cart,
    CartItem,
    CheckoutSession,
    Customer,
    Order,
    OrderItem,
    Product,
)

NAME_MAX = 200
DESCRIPTION_MAX = 5000
SKU_MAX = 64
EMAIL_MAX = 254
# Amounts live in 32-bit integer columns: these bounds keep every total representable.
PRICE_MAX = 100_000_000
INVENTORY_MAX = 1_000_000_000
QUANTITY_MAX = 1000
CART_LINES_MAX = 100
TOTAL_MAX = 2**31 - 1
ID_MAX = 2**31 - 1

PRODUCT_FIELDS = (
    "name",
    "description",
    "price",
    "currency",
    "sku",
    "inventory",
    "published",
    "markets",
)
CART_FIELDS = ("items",)
ITEM_FIELDS = ("product_id", "quantity")
CHECKOUT_FIELDS = ("cart_id", "email")

CART_OPEN = "open"
CART_CHECKED_OUT = "checked_out"
ORDER_PENDING = "pending"
ORDER_FULFILLED = "fulfilled"
ORDER_CANCELLED = "cancelled"
ORDER_STATUSES = (ORDER_PENDING, ORDER_FULFILLED, ORDER_CANCELLED)

CART_ID_PREFIX = "cart_"
CHECKOUT_ID_PREFIX = "chk_"
RANDOM_ID_LENGTH = 24

CURRENCY_PATTERN = re.compile(r"^[A-Za-z]{3}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

T = TypeVar("T")


class StoreError(Exception):
    """A store rule was broken; `message` says which, in words an API consumer can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    """No such object for this tenant (another merchant's or market's object included)."""


class ProductNotFound(NotFound):
    """No such product for this tenant."""


class CartNotFound(NotFound):
    """No such cart for this tenant."""


class OrderNotFound(NotFound):
    """No such order for this tenant."""


class InvalidRequest(StoreError):
    """The request cannot be carried out as asked."""


class InvalidField(InvalidRequest):
    """One field of the request is invalid; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class OutOfStock(InvalidField):
    """Not enough inventory of a product for the quantity asked."""

    def __init__(self, field: str, product_id: int, available: int) -> None:
        super().__init__(
            field,
            f"{field}: product_id {product_id} is out of stock "
            f"(only {max(available, 0)} available).",
        )
        self.product_id = product_id
        self.available = available


class CartClosed(InvalidRequest):
    """The cart was checked out, so it can no longer change."""


class OrderStateError(InvalidRequest):
    """The order is not in a state that allows this transition."""


@dataclass(frozen=True)
class Tenant:
    """Whose data a caller sees: one merchant, and one of its markets or every market (None)."""

    merchant_id: int
    market_id: int | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list ordered by id, and whether more follow it."""

    items: list[T]
    has_more: bool


@dataclass(frozen=True)
class CheckoutResult:
    """What a checkout created: the session, its pending order and the customer."""

    session: CheckoutSession
    order: Order
    customer: Customer


# -- plumbing -------------------------------------------------------------------------------


@contextmanager
def _transaction() -> Iterator[None]:
    """Commit what the block did, or roll all of it back and re-raise: no half-done writes."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _random_id(prefix: str) -> str:
    """A random, unguessable id such as cart_… or chk_…."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(RANDOM_ID_LENGTH))


def _paginate(query: Select[Any], id_column: Any, limit: int, starting_after: Any) -> Page[Any]:
    """Cursor pagination: the first `limit` rows with an id after `starting_after`."""
    if isinstance(starting_after, int) and starting_after >= ID_MAX:
        return Page([], False)  # past the largest id a column holds (PostgreSQL would overflow)
    if starting_after is not None:
        query = query.where(id_column > starting_after)
    rows = list(db.session.scalars(query.order_by(id_column).limit(limit + 1)))
    return Page(rows[:limit], len(rows) > limit)


def _is_int(value: Any) -> bool:
    """JSON integers only: booleans and floats are not integers here."""
    return isinstance(value, int) and not isinstance(value, bool)


def _reject_unknown(data: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
    """Refuse fields the resource does not have, so a typo never passes silently."""
    for name in data:
        if name not in allowed:
            raise InvalidField(
                name, f"{name} is not a {what} field (expected: {', '.join(allowed)})."
            )


def _require_mapping(data: Any, field: str) -> Mapping[str, Any]:
    """The value as a JSON object, or InvalidField."""
    if not isinstance(data, Mapping):
        raise InvalidField(field, f"{field} must be a JSON object.")
    return data


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively and without surrounding spaces."""
    return email.strip().lower()


# -- products -------------------------------------------------------------------------------


def _products_of(tenant: Tenant) -> Select[tuple[Product]]:
    """Every product the tenant may see in the admin API (its market's only, if it has one)."""
    query = select(Product).where(Product.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Product.markets.any(Market.id == tenant.market_id))
    return query.options(selectinload(Product.markets))


def _catalog_of(merchant_id: int, market_id: int | None) -> Select[tuple[Product]]:
    """Published products on sale in a market (any of the merchant's, when market_id is None)."""
    query = select(Product).where(Product.merchant_id == merchant_id, Product.published.is_(True))
    if market_id is not None:
        query = query.where(Product.markets.any(Market.id == market_id))
    return query.options(selectinload(Product.markets))


def list_catalog(
    tenant: Tenant, limit: int = 20, starting_after: int | None = None
) -> Page[Product]:
    """Published products the tenant's storefront may sell, by id."""
    return _paginate(
        _catalog_of(tenant.merchant_id, tenant.market_id), Product.id, limit, starting_after
    )


def get_catalog_product(tenant: Tenant, product_id: int) -> Product:
    """One published product of the tenant's catalog, or ProductNotFound."""
    product = db.session.scalar(
        _catalog_of(tenant.merchant_id, tenant.market_id).where(Product.id == product_id)
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
    query = _products_of(tenant)
    if published is not None:
        query = query.where(Product.published.is_(published))
    return _paginate(query, Product.id, limit, starting_after)


def get_product(tenant: Tenant, product_id: int) -> Product:
    """One product of the tenant, published or not, or ProductNotFound."""
    product = db.session.scalar(_products_of(tenant).where(Product.id == product_id))
    if product is None:
        raise ProductNotFound(f"No such product: {product_id}.")
    return product


def _clean_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("name", "name is required and must be a non-empty string.")
    name = value.strip()
    if len(name) > NAME_MAX:
        raise InvalidField("name", f"name must be at most {NAME_MAX} characters.")
    return name


def _clean_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidField("description", "description must be a string.")
    if len(value) > DESCRIPTION_MAX:
        raise InvalidField(
            "description", f"description must be at most {DESCRIPTION_MAX} characters."
        )
    return value.strip()


def _clean_price(value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise InvalidField("price", "price must be a non-negative integer (minor units).")
    if value > PRICE_MAX:
        raise InvalidField("price", f"price must be at most {PRICE_MAX} (minor units).")
    return value


def _clean_currency(value: Any) -> str:
    if not isinstance(value, str) or not CURRENCY_PATTERN.match(value):
        raise InvalidField(
            "currency", "currency must be a three-letter ISO 4217 code, such as USD."
        )
    return value.upper()


def _clean_inventory(value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise InvalidField("inventory", "inventory must be a non-negative integer.")
    if value > INVENTORY_MAX:
        raise InvalidField("inventory", f"inventory must be at most {INVENTORY_MAX}.")
    return value


def _clean_published(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidField("published", "published must be true or false.")
    return value


def _clean_sku(tenant: Tenant, value: Any, product: Product | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField("sku", "sku must be a string or null.")
    sku = value.strip()
    if not sku:
        return None
    if len(sku) > SKU_MAX:
        raise InvalidField("sku", f"sku must be at most {SKU_MAX} characters.")
    query = select(Product.id).where(Product.merchant_id == tenant.merchant_id, Product.sku == sku)
    if product is not None:
        query = query.where(Product.id != product.id)
    if db.session.scalar(query) is not None:
        raise _sku_taken(sku)
    return sku


def _sku_taken(sku: str) -> InvalidField:
    return InvalidField("sku", f"sku {sku!r} is already used by another product.")


def _clean_markets(tenant: Tenant, value: Any, product: Product | None) -> list[Market]:
    """Resolve market codes; a market-scoped tenant sees (and keeps) only its own market."""
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise InvalidField("markets", 'markets must be a list of market codes, such as ["US"].')
    query = select(Market).where(Market.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Market.id == tenant.market_id)
    visible = {market.code.upper(): market for market in db.session.scalars(query)}
    chosen: dict[int, Market] = {}
    for code in value:
        market = visible.get(code.strip().upper())
        if market is None:
            raise InvalidField("markets", f"markets contains an unknown market code: {code!r}.")
        chosen[market.id] = market
    if tenant.market_id is None:
        return list(chosen.values())
    if tenant.market_id not in chosen:
        own = next(iter(visible.values()))
        raise InvalidField(
            "markets", f"markets must include {own.code}: this key is limited to that market."
        )
    # Links to markets this tenant cannot see stay as they were.
    hidden = [m for m in (product.markets if product else []) if m.id != tenant.market_id]
    return hidden + list(chosen.values())


def _clean_product(
    tenant: Tenant, data: Mapping[str, Any], product: Product | None
) -> dict[str, Any]:
    """Validate a product body (all of it on create, the given fields on update)."""
    _reject_unknown(data, PRODUCT_FIELDS, "product")
    creating = product is None
    if creating:
        for required in ("name", "price", "currency"):
            if required not in data:
                raise InvalidField(required, f"{required} is required.")
    cleaners = {
        "name": _clean_name,
        "description": _clean_description,
        "price": _clean_price,
        "currency": _clean_currency,
        "inventory": _clean_inventory,
        "published": _clean_published,
    }
    values: dict[str, Any] = {}
    for name in PRODUCT_FIELDS:
        if name not in data:
            continue
        if name == "sku":
            values[name] = _clean_sku(tenant, data[name], product)
        elif name == "markets":
            values[name] = _clean_markets(tenant, data[name], product)
        else:
            values[name] = cleaners[name](data[name])
    if creating and "markets" not in values and tenant.market_id is not None:
        # A market-scoped key creates products in its own market.
        values["markets"] = list(
            db.session.scalars(
                select(Market).where(
                    Market.id == tenant.market_id, Market.merchant_id == tenant.merchant_id
                )
            )
        )
    return values


def _flush_product(sku: str | None) -> None:
    """Flush, turning a lost race on the SKU's unique constraint into InvalidField."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _sku_taken(sku or "") from None


def create_product(tenant: Tenant, data: Mapping[str, Any]) -> Product:
    """Create a product from a validated body, in one transaction."""
    with _transaction():
        values = _clean_product(tenant, data, None)
        product = Product(merchant_id=tenant.merchant_id, **values)
        db.session.add(product)
        _flush_product(values.get("sku"))
    return product


def update_product(tenant: Tenant, product_id: int, data: Mapping[str, Any]) -> Product:
    """Change the given fields of a product, in one transaction."""
    with _transaction():
        product = get_product(tenant, product_id)
        values = _clean_product(tenant, data, product)
        for name, value in values.items():
            setattr(product, name, value)
        product.updated_at = utcnow()
        _flush_product(values.get("sku"))
    return product


def delete_product(tenant: Tenant, product_id: int) -> None:
    """Delete a product and its lines in carts; orders keep their copy of name and price."""
    with _transaction():
        product = get_product(tenant, product_id)
        db.session.execute(delete(CartItem).where(CartItem.product_id == product.id))
        db.session.execute(
            update(OrderItem).where(OrderItem.product_id == product.id).values(product_id=None)
        )
        db.session.delete(product)


# -- carts ----------------------------------------------------------------------------------


def _clean_item(data: Any, prefix: str = "") -> tuple[int, int]:
    """A cart item body: (product_id, quantity)."""
    data = _require_mapping(data, prefix.rstrip(".") or "body")
    for name in data:
        if name not in ITEM_FIELDS:
            raise InvalidField(
                f"{prefix}{name}",
                f"{prefix}{name} is not a cart item field (expected: {', '.join(ITEM_FIELDS)}).",
            )
    product_id = data.get("product_id")
    if not _is_int(product_id) or not 1 <= product_id <= ID_MAX:
        raise InvalidField(
            f"{prefix}product_id", f"{prefix}product_id is required and must be a product id."
        )
    quantity = data.get("quantity", 1)
    if not _is_int(quantity) or not 1 <= quantity <= QUANTITY_MAX:
        raise InvalidField(
            f"{prefix}quantity",
            f"{prefix}quantity must be an integer from 1 to {QUANTITY_MAX}.",
        )
    return product_id, quantity


def _carts_of(tenant: Tenant) -> Select[tuple[Cart]]:
    query = select(Cart).where(Cart.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Cart.market_id == tenant.market_id)
    return query.options(selectinload(Cart.items).selectinload(CartItem.product))


def get_cart(tenant: Tenant, cart_id: str) -> Cart:
    """One cart of the tenant (of its market, if it has one), or CartNotFound."""
    if not cart_id.isprintable() or len(cart_id) > 40:
        raise CartNotFound("No such cart.")  # e.g. a NUL byte, which PostgreSQL text cannot hold
    cart = db.session.scalar(_carts_of(tenant).where(Cart.id == cart_id))
    if cart is None:
        raise CartNotFound(f"No such cart: {cart_id}.")
    return cart


def cart_currency(cart: Cart) -> str | None:
    """The one currency of a cart's items (None while it is empty)."""
    return cart.items[0].product.currency if cart.items else None


def cart_total(cart: Cart) -> int:
    """The sum of the cart's lines at today's prices, in minor units."""
    return sum(item.product.price * item.quantity for item in cart.items)


def _add_to_cart(cart: Cart, product_id: int, quantity: int, prefix: str = "") -> None:
    """Put a quantity of a product in an open cart, checking every rule of the store."""
    if cart.status != CART_OPEN:
        raise CartClosed(f"Cart {cart.id} is checked out and can no longer change.")
    product = db.session.scalar(
        _catalog_of(cart.merchant_id, cart.market_id).where(Product.id == product_id)
    )
    if product is None:
        raise ProductNotFound(f"No such product: {prefix}product_id {product_id}.")
    currency = cart_currency(cart)
    if currency is not None and product.currency != currency:
        raise InvalidField(
            f"{prefix}product_id",
            f"{prefix}product_id {product_id} is priced in {product.currency} but the cart is "
            f"in {currency}; a cart holds a single currency.",
        )
    item = next((line for line in cart.items if line.product_id == product.id), None)
    if item is None and len(cart.items) >= CART_LINES_MAX:
        raise InvalidField(
            f"{prefix}product_id", f"A cart holds at most {CART_LINES_MAX} different products."
        )
    total_quantity = quantity + (item.quantity if item else 0)
    if total_quantity > QUANTITY_MAX:
        raise InvalidField(
            f"{prefix}quantity",
            f"{prefix}quantity would bring product_id {product_id} to {total_quantity} in the "
            f"cart; the most is {QUANTITY_MAX}.",
        )
    if product.inventory < total_quantity:
        raise OutOfStock(f"{prefix}quantity", product.id, product.inventory)
    if cart_total(cart) + product.price * quantity > TOTAL_MAX:
        raise InvalidField(f"{prefix}quantity", f"{prefix}quantity makes the cart total too large.")
    if item is None:
        cart.items.append(CartItem(product=product, product_id=product.id, quantity=quantity))
    else:
        item.quantity = total_quantity
    cart.updated_at = utcnow()


def create_cart(
    tenant: Tenant, data: Mapping[str, Any] | None = None, customer_id: int | None = None
) -> Cart:
    """A new open cart in the tenant's market, optionally with items, in one transaction;
    `customer_id`: the signed-in shopper it belongs to."""
    data = data or {}
    _reject_unknown(data, CART_FIELDS, "cart")
    items = data.get("items", [])
    if not isinstance(items, list):
        raise InvalidField("items", "items must be a list of {product_id, quantity} objects.")
    lines = [_clean_item(item, f"items[{index}].") for index, item in enumerate(items)]
    with _transaction():
        cart = Cart(
            id=_random_id(CART_ID_PREFIX),
            merchant_id=tenant.merchant_id,
            market_id=tenant.market_id,
            customer_id=customer_id,
            status=CART_OPEN,
        )
        db.session.add(cart)
        for index, (product_id, quantity) in enumerate(lines):
            _add_to_cart(cart, product_id, quantity, f"items[{index}].")
    return cart


def add_item(tenant: Tenant, cart_id: str, data: Mapping[str, Any]) -> Cart:
    """Add a product to a cart (adding one already there raises its quantity)."""
    with _transaction():
        cart = get_cart(tenant, cart_id)
        product_id, quantity = _clean_item(data)
        _add_to_cart(cart, product_id, quantity)
    return cart


# -- checkouts ------------------------------------------------------------------------------


def _find_or_create_customer(merchant_id: int, email: str) -> Customer:
    """The merchant's customer with this (normalised) email, created if new."""
    customer = db.session.scalar(
        select(Customer).where(Customer.merchant_id == merchant_id, Customer.email == email)
    )
    if customer is None:
        customer = Customer(merchant_id=merchant_id, email=email)
        db.session.add(customer)
    return customer


def _clean_checkout(data: Mapping[str, Any]) -> tuple[str, str]:
    """A checkout body: (cart_id, normalised email)."""
    _reject_unknown(data, CHECKOUT_FIELDS, "checkout")
    cart_id = data.get("cart_id")
    if not isinstance(cart_id, str) or not cart_id.strip():
        raise InvalidField("cart_id", "cart_id is required and must be a cart id.")
    email = data.get("email")
    if not isinstance(email, str):
        raise InvalidField("email", "email is required and must be a string.")
    email = normalize_email(email)
    if len(email) > EMAIL_MAX or not EMAIL_PATTERN.match(email):
        raise InvalidField("email", "email must be a valid email address.")
    return cart_id.strip(), email


def checkout(
    tenant: Tenant, data: Mapping[str, Any], customer_id: int | None = None
) -> CheckoutResult:
    """Turn an open cart into a checkout session and a pending order, reserving inventory.

    All or nothing: if any line cannot be reserved, no inventory, order or customer changes.
    The order belongs to `customer_id` (the signed-in shopper), else to the cart's shopper, else
    to the guest customer of `email`; another shopper's cart is not found.
    """
    cart_id, email = _clean_checkout(data)
    try:
        return _checkout(tenant, cart_id, email, customer_id)
    except IntegrityError:
        # A concurrent checkout created this customer first; it exists now, so try once more.
        return _checkout(tenant, cart_id, email, customer_id)


def _checkout(
    tenant: Tenant, cart_id: str, email: str, customer_id: int | None = None
) -> CheckoutResult:
    """One attempt at a checkout, in one transaction."""
    with _transaction():
        cart = get_cart(tenant, cart_id)
        if customer_id is not None and cart.customer_id not in (None, customer_id):
            raise CartNotFound(f"No such cart: {cart_id}.")
        if cart.status != CART_OPEN:
            raise CartClosed(f"Cart {cart.id} is already checked out.")
        if not cart.items:
            raise InvalidField("cart_id", f"cart_id {cart.id} is empty; add items first.")
        # Claim the cart first, so two concurrent checkouts of one cart cannot both succeed.
        claimed = db.session.execute(
            update(Cart)
            .where(Cart.id == cart.id, Cart.status == CART_OPEN)
            .values(
                status=CART_CHECKED_OUT,
                updated_at=utcnow(),
                customer_id=cart.customer_id if customer_id is None else customer_id,
            )
        )
        if claimed.rowcount != 1:
            raise CartClosed(f"Cart {cart.id} is already checked out.")
        currency = cart_currency(cart)
        lines = []
        for item in cart.items:
            product = item.product
            on_sale = db.session.scalar(
                _catalog_of(cart.merchant_id, cart.market_id).where(Product.id == product.id)
            )
            if on_sale is None:
                raise InvalidField(
                    "cart_id", f"product_id {product.id} in the cart is no longer for sale."
                )
            if product.currency != currency:
                raise InvalidField(
                    "cart_id",
                    f"product_id {product.id} is priced in {product.currency} but the cart is "
                    f"in {currency}; a cart holds a single currency.",
                )
            # A conditional decrement: safe against concurrent checkouts in any process.
            reserved = db.session.execute(
                update(Product)
                .where(Product.id == product.id, Product.inventory >= item.quantity)
                .values(inventory=Product.inventory - item.quantity)
            )
            if reserved.rowcount != 1:
                db.session.refresh(product, ["inventory"])
                raise OutOfStock("cart_id", product.id, product.inventory)
            lines.append(
                OrderItem(
                    product_id=product.id,
                    name=product.name,
                    unit_price=product.price,
                    quantity=item.quantity,
                )
            )
        total = sum(line.unit_price * line.quantity for line in lines)
        if total > TOTAL_MAX:
            raise InvalidField("cart_id", "The cart total is too large for one order.")
        owner_id = customer_id if customer_id is not None else cart.customer_id
        if owner_id is not None:
            customer = db.session.get(Customer, owner_id)
        else:
            customer = _find_or_create_customer(tenant.merchant_id, email)
        order = Order(
            merchant_id=tenant.merchant_id,
            market_id=cart.market_id,
            customer=customer,
            status=ORDER_PENDING,
            currency=currency,
            total=total,
            items=lines,
        )
        db.session.add(order)
        db.session.flush()
        session = CheckoutSession(
            id=_random_id(CHECKOUT_ID_PREFIX),
            merchant_id=tenant.merchant_id,
            cart_id=cart.id,
            order=order,
            order_id=order.id,
            customer_id=customer.id,
        )
        db.session.add(session)
    return CheckoutResult(session=session, order=order, customer=customer)


# -- orders ---------------------------------------------------------------------------------


def _orders_of(tenant: Tenant) -> Select[tuple[Order]]:
    query = select(Order).where(Order.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Order.market_id == tenant.market_id)
    return query.options(
        selectinload(Order.items), selectinload(Order.customer), selectinload(Order.market)
    )


def clean_order_status(value: str | None) -> str | None:
    """An order status filter, or InvalidField naming `status`."""
    if value is None or value in ORDER_STATUSES:
        return value
    raise InvalidField("status", f"status must be one of {', '.join(ORDER_STATUSES)}.")


def list_orders(
    tenant: Tenant,
    limit: int = 20,
    starting_after: int | None = None,
    status: str | None = None,
) -> Page[Order]:
    """The tenant's orders by id, optionally only those with a status."""
    query = _orders_of(tenant)
    if clean_order_status(status) is not None:
        query = query.where(Order.status == status)
    return _paginate(query, Order.id, limit, starting_after)


def get_order(tenant: Tenant, order_id: int) -> Order:
    """One order of the tenant, or OrderNotFound."""
    order = db.session.scalar(_orders_of(tenant).where(Order.id == order_id))
    if order is None:
        raise OrderNotFound(f"No such order: {order_id}.")
    return order


def _leave_pending(tenant: Tenant, order_id: int, new_status: str, verb: str) -> Order:
    """Move a pending order to `new_status` (conditionally, so two requests cannot both win)."""
    order = get_order(tenant, order_id)
    moved = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == ORDER_PENDING)
        .values(status=new_status, updated_at=utcnow())
    )
    if moved.rowcount != 1:
        db.session.refresh(order, ["status"])
        raise OrderStateError(
            f"Order {order.id} is {order.status}; only pending orders can be {verb}."
        )
    return order


def fulfill_order(tenant: Tenant, order_id: int) -> Order:
    """Mark a pending order fulfilled."""
    with _transaction():
        order = _leave_pending(tenant, order_id, ORDER_FULFILLED, "fulfilled")
    return order


def cancel_order(tenant: Tenant, order_id: int) -> Order:
    """Cancel a pending order and return its reserved inventory, in one transaction."""
    with _transaction():
        order = _leave_pending(tenant, order_id, ORDER_CANCELLED, "cancelled")
        for line in order.items:
            if line.product_id is not None:
                db.session.execute(
                    update(Product)
                    .where(Product.id == line.product_id)
                    .values(inventory=Product.inventory + line.quantity)
                )
    return order


# -- customers and figures ------------------------------------------------------------------


def list_customers(
    tenant: Tenant, limit: int = 20, starting_after: int | None = None
) -> Page[Customer]:
    """The tenant's customers by id (a market-scoped tenant: those who ordered in its market)."""
    query = select(Customer).where(Customer.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(
            Customer.id.in_(select(Order.customer_id).where(Order.market_id == tenant.market_id))
        )
    return _paginate(query, Customer.id, limit, starting_after)


def sales_figures(tenant: Tenant) -> dict[str, Any]:
    """Order counts by status, and order totals by currency and status."""
    query = (
        select(Order.status, Order.currency, func.count(), func.coalesce(func.sum(Order.total), 0))
        .where(Order.merchant_id == tenant.merchant_id)
        .group_by(Order.status, Order.currency)
        .order_by(Order.currency, Order.status)
    )
    if tenant.market_id is not None:
        query = query.where(Order.market_id == tenant.market_id)
    counts = dict.fromkeys(ORDER_STATUSES, 0)
    revenue: dict[str, dict[str, int]] = {}
    for status, currency, count, total in db.session.execute(query):
        counts[status] = counts.get(status, 0) + count
        revenue.setdefault(currency, dict.fromkeys(ORDER_STATUSES, 0))[status] = int(total)
    return {
        "orders": counts,
        "revenue": [{"currency": currency, **amounts} for currency, amounts in revenue.items()],
    }


def list_markets(
    tenant: Tenant, limit: int = 20, starting_after: int | None = None
) -> Page[Market]:
    """The tenant's markets by id (just its own, for a market-scoped tenant)."""
    query = select(Market).where(Market.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(Market.id == tenant.market_id)
    return _paginate(query, Market.id, limit, starting_after)


def market_codes(product: Product) -> list[str]:
    """The codes of the markets a product is sold in, sorted."""
    return sorted(market.code for market in product.markets)
