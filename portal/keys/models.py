"""API keys and the append-only audit log of their events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Market, Merchant
from portal.database import utcnow
from portal.extensions import db
from portal.keys.tokens import mask_token

STATE_ACTIVE = "active"
STATE_EXPIRED = "expired"
STATE_REVOKED = "revoked"
STATES = (STATE_ACTIVE, STATE_EXPIRED, STATE_REVOKED)


class ApiKey(db.Model):
    """One publishable or secret key; only its HMAC hash identifies it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    market_id: Mapped[int | None] = mapped_column(ForeignKey("markets.id"), index=True)
    key_type: Mapped[str] = mapped_column(String(12))
    mode: Mapped[str] = mapped_column(String(4), default="live")
    label: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_ip_ranges: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_limit: Mapped[int] = mapped_column(default=60)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(8))
    last4: Mapped[str] = mapped_column(String(4))
    # Publishable keys are safe in a browser, so the merchant may see them again.
    publishable_token: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_by_name: Mapped[str] = mapped_column(String(254))
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    # May lie in the future: a rotated key keeps working until its grace period ends.
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by_name: Mapped[str | None] = mapped_column(String(254), default=None)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), default=None)
    # The last state whose event is in the audit log, so expiry is logged exactly once.
    logged_state: Mapped[str] = mapped_column(String(12), default=STATE_ACTIVE)
    # When a secret scanner last reported this key as found in public code (POST /leaked-keys).
    leaked_at: Mapped[datetime | None] = mapped_column(default=None)

    merchant: Mapped[Merchant] = relationship()
    market: Mapped[Market | None] = relationship()
    replaced_by: Mapped[ApiKey | None] = relationship(remote_side=[id])

    def state_at(self, now: datetime) -> str:
        """Active, expired or revoked at the given time."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return STATE_REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return STATE_EXPIRED
        return STATE_ACTIVE

    @property
    def state(self) -> str:
        """The key's state now."""
        return self.state_at(utcnow())

    @property
    def masked(self) -> str:
        """The prefix and last four characters, e.g. sk_live_…a1B2."""
        return mask_token(self.prefix, self.last4)

    @property
    def is_secret(self) -> bool:
        """Whether this is a secret (server-only) key."""
        return self.key_type == "secret"

    @property
    def retiring_at(self) -> datetime | None:
        """When a rotated key still in its grace period stops working."""
        if self.revoked_at is not None and self.revoked_at > utcnow():
            return self.revoked_at
        return None


class AuditEvent(db.Model):
    """An append-only record of something that happened to a key: who, when, from where."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_merchant_created", "merchant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    api_key: Mapped[ApiKey | None] = relationship()


class KeyReveal(db.Model):
    """One create or rotate form submission: its idempotency token, the key it made, and the new
    key sealed (XOR) with a one-time pad that only the submitting browser's session holds."""

    __tablename__ = "key_reveals"
    __table_args__ = (
        UniqueConstraint("merchant_id", "request_token", name="uq_key_reveals_merchant_request"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    request_token: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    event: Mapped[str] = mapped_column(String(12))
    # Hex of key XOR pad; alone it says nothing about the key. Wiped once shown.
    sealed: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    api_key: Mapped[ApiKey] = relationship()
