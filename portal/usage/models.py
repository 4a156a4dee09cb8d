"""Usage storage that stays small: hourly rollups, daily endpoint counts, the last calls per key."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

# Upper bounds (ms) of the latency histogram; the last bucket is everything slower.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
LATENCY_COLUMNS = tuple(f"latency_le_{bound}" for bound in LATENCY_BOUNDS_MS) + ("latency_slower",)
OUTCOMES = (
    "ok",
    "client_error",
    "server_error",
    "rate_limited",
    "origin_denied",
    "scope_denied",
    "ip_denied",
)


class UsageHourly(db.Model):
    """Calls of one key in one hour: counts by outcome, latency sum and histogram."""

    __tablename__ = "usage_hourly"
    __table_args__ = (Index("ix_usage_hourly_merchant_hour", "merchant_id", "hour"),)

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    calls: Mapped[int] = mapped_column(default=0)
    ok: Mapped[int] = mapped_column(default=0)
    client_error: Mapped[int] = mapped_column(default=0)
    server_error: Mapped[int] = mapped_column(default=0)
    rate_limited: Mapped[int] = mapped_column(default=0)
    origin_denied: Mapped[int] = mapped_column(default=0)
    scope_denied: Mapped[int] = mapped_column(default=0)
    ip_denied: Mapped[int] = mapped_column(default=0)
    latency_sum_ms: Mapped[float] = mapped_column(default=0.0)
    latency_le_1: Mapped[int] = mapped_column(default=0)
    latency_le_2: Mapped[int] = mapped_column(default=0)
    latency_le_5: Mapped[int] = mapped_column(default=0)
    latency_le_10: Mapped[int] = mapped_column(default=0)
    latency_le_25: Mapped[int] = mapped_column(default=0)
    latency_le_50: Mapped[int] = mapped_column(default=0)
    latency_le_100: Mapped[int] = mapped_column(default=0)
    latency_le_250: Mapped[int] = mapped_column(default=0)
    latency_le_500: Mapped[int] = mapped_column(default=0)
    latency_le_1000: Mapped[int] = mapped_column(default=0)
    latency_le_2500: Mapped[int] = mapped_column(default=0)
    latency_slower: Mapped[int] = mapped_column(default=0)


class UsageEndpointDaily(db.Model):
    """Calls of one key to one route (method + rule, not the raw path) on one day."""

    __tablename__ = "usage_endpoint_daily"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    method: Mapped[str] = mapped_column(String(8), primary_key=True)
    route: Mapped[str] = mapped_column(String(120), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    calls: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)


class UsageCall(db.Model):
    """One recent call; only the last RECENT_PER_KEY calls of each key are kept."""

    __tablename__ = "usage_calls"
    __table_args__ = (Index("ix_usage_calls_key_id", "api_key_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column()
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(120))
    status: Mapped[int] = mapped_column()
    latency_ms: Mapped[float] = mapped_column()
    origin: Mapped[str | None] = mapped_column(String(255), default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    client_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    request_id: Mapped[str | None] = mapped_column(String(40), default=None)
