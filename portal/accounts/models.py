"""Merchant accounts: the merchant, its users and its markets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import utcnow
from portal.extensions import db

PLAN_ACTIVE = "active"
PLAN_INACTIVE = "inactive"


class Merchant(db.Model):
    """A store: owns users, markets, keys and store data."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    plan: Mapped[str] = mapped_column(String(16), default=PLAN_ACTIVE)
    # How long a checkout holds its stock before it expires (store setting, 5 to 1440).
    checkout_hold_minutes: Mapped[int] = mapped_column(default=30, server_default="30")
    # Store settings (portal.settings): shown to shoppers and used by the storefront features.
    support_email: Mapped[str | None] = mapped_column(String(254), default=None)
    storefront_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    customer_access_minutes: Mapped[int] = mapped_column(default=15, server_default="15")
    customer_refresh_days: Mapped[int] = mapped_column(default=30, server_default="30")
    revoke_leaked_keys: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    # Every member must sign in with two factors (owners set it: portal.twofactor).
    require_two_factor: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="merchant")
    markets: Mapped[list[Market]] = relationship(back_populates="merchant", order_by="Market.code")

    @property
    def plan_active(self) -> bool:
        """Whether the merchant's keys may call the API."""
        return self.plan == PLAN_ACTIVE


class User(db.Model):
    """A person who signs in; `merchant` is the first store they joined (by sign-up or invite)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Sessions carry this number; signing out bumps it, so a copied cookie dies too.
    session_epoch: Mapped[int] = mapped_column(default=0)
    # When the person proved they read this address (the sign-up link, an invitation, an
    # operator); until then they may look around but not create keys or invite anyone.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Two-factor sign-in (portal.twofactor): the TOTP secret (base32) once confirmed, when it
    # was turned on, and the last time step a code was accepted for (a code is used once).
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(default=None)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)

    merchant: Mapped[Merchant] = relationship(back_populates="users")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", order_by="Membership.id", cascade="all, delete-orphan"
    )

    @property
    def email_confirmed(self) -> bool:
        """Whether the person has shown they read mail sent to `email`."""
        return self.email_confirmed_at is not None

    @property
    def two_factor_enabled(self) -> bool:
        """Whether signing in needs a code from an authenticator app (or a recovery code)."""
        return self.totp_secret is not None and self.totp_enabled_at is not None


class Membership(db.Model):
    """A user's role in one store (a user may belong to several stores)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("merchant_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    merchant: Mapped[Merchant] = relationship()
    user: Mapped[User] = relationship(back_populates="memberships")


class Market(db.Model):
    """A market of a merchant (a country or region it sells in), e.g. US or EU."""

    __tablename__ = "markets"
    __table_args__ = (UniqueConstraint("merchant_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    merchant: Mapped[Merchant] = relationship(back_populates="markets")
