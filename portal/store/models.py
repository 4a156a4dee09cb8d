"""Store resources, always owned by one merchant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Market
from portal.database import utcnow
from portal.extensions import db

product_markets = Table(
    "product_markets",
    db.metadata,
    Column("product_id", ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    Column("market_id", ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True),
)


class Product(db.Model):
    """A product of the store; price in minor units of its currency."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("merchant_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    inventory: Mapped[int] = mapped_column(default=0)
    published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    markets: Mapped[list[Market]] = relationship(secondary=product_markets)


class Customer(db.Model):
    """A shopper, known by email within one merchant."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("merchant_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cart(db.Model):
    """A shopping cart; its id is random because storefront code can see it."""

    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    market_id: Mapped[int | None] = mapped_column(ForeignKey("markets.id"), default=None)
    # The signed-in shopper who created it (X-Customer-Token); None for a guest cart.
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id"), default=None, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    items: Mapped[list[CartItem]] = relationship(
        back_populates="cart", cascade="all, delete-orphan", order_by="CartItem.id"
    )
    market: Mapped[Market | None] = relationship()

    @property
    def currency(self) -> str | None:
        """The one currency of the cart's items (None while it is empty)."""
        return self.items[0].product.currency if self.items else None

    @property
    def total(self) -> int:
        """The sum of the lines at today's prices, in minor units."""
        return sum(item.product.price * item.quantity for item in self.items)


class CartItem(db.Model):
    """A product and quantity in a cart."""

    __tablename__ = "cart_items"
    __table_args__ = (UniqueConstraint("cart_id", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column()

    cart: Mapped[Cart] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()


class Order(db.Model):
    """An order: pending after checkout; placed when completed, expired if not in time;
    then fulfilled or cancelled."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    market_id: Mapped[int | None] = mapped_column(ForeignKey("markets.id"), default=None)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )
    customer: Mapped[Customer] = relationship()
    market: Mapped[Market | None] = relationship()


class OrderItem(db.Model):
    """A line of an order, with the name and price at the time of checkout."""

    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[int] = mapped_column()
    quantity: Mapped[int] = mapped_column()

    order: Mapped[Order] = relationship(back_populates="items")


class CheckoutSession(db.Model):
    """A checkout (chk_…) that turned a cart into a pending order, holding its stock until
    `expires_at` unless completed first."""

    __tablename__ = "checkout_sessions"
    __table_args__ = (Index("ix_checkout_sessions_open_expiry", "completed_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column(default=None)

    order: Mapped[Order] = relationship()
