"""The usage figures merchants see: totals, rates, latency, series, top endpoints, recent calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from portal.database import iso_utc, start_of_hour, utcnow
from portal.extensions import db
from portal.keys.models import ApiKey
from portal.keys.service import EXPIRING_SOON
from portal.usage.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    OUTCOMES,
    UsageCall,
    UsageEndpointDaily,
    UsageHourly,
)

WINDOW_DAYS = 30
OUTCOME_LABELS = {
    "ok": "OK",
    "client_error": "Client error",
    "server_error": "Server error",
    "rate_limited": "Rate limited",
    "origin_denied": "Origin denied",
    "scope_denied": "Scope denied",
    "ip_denied": "IP denied",
}


@dataclass
class UsageSummary:
    """Figures for one key or a whole merchant over a window (default: the last 30 days)."""

    start: datetime
    end: datetime
    total_calls: int = 0
    calls_24h: int = 0
    window_calls: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    latency_sum_ms: float = 0.0
    histogram: list[int] = field(default_factory=list)
    hourly: list[tuple[datetime, int]] = field(default_factory=list)
    daily: list[tuple[date, int]] = field(default_factory=list)
    top_endpoints: list[dict[str, Any]] = field(default_factory=list)
    recent: list[UsageCall] = field(default_factory=list)
    # Calls that did not succeed (every outcome but ok), per bar of the charts.
    hourly_errors: dict[datetime, int] = field(default_factory=dict)
    daily_errors: dict[date, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        """Share of calls in the window that succeeded (0..1), or None without calls."""
        return self.outcomes.get("ok", 0) / self.window_calls if self.window_calls else None

    @property
    def avg_latency_ms(self) -> float | None:
        """Mean latency in the window."""
        return self.latency_sum_ms / self.window_calls if self.window_calls else None

    @property
    def p95_latency_ms(self) -> float | None:
        """95th percentile latency, interpolated within the histogram bucket it falls in."""
        return percentile(self.histogram, 0.95)

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        return {
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "total_calls": self.total_calls,
            "calls_last_24h": self.calls_24h,
            "calls": self.window_calls,
            "success_rate": None if self.success_rate is None else round(self.success_rate, 4),
            "avg_latency_ms": _round(self.avg_latency_ms),
            "p95_latency_ms": _round(self.p95_latency_ms),
            "outcomes": {name: self.outcomes.get(name, 0) for name in OUTCOMES},
            "top_endpoints": self.top_endpoints,
        }


def _round(value: float | None) -> float | None:
    """Milliseconds to one decimal."""
    return None if value is None else round(value, 1)


def percentile(histogram: list[int], fraction: float) -> float | None:
    """Estimate a percentile (ms) from latency bucket counts."""
    total = sum(histogram)
    if not total:
        return None
    target = fraction * total
    seen = 0
    lower = 0.0
    for count, upper in zip(histogram, [*LATENCY_BOUNDS_MS, None], strict=True):
        if count and seen + count >= target:
            if upper is None:
                return float(LATENCY_BOUNDS_MS[-1])
            return lower + (upper - lower) * (target - seen) / count
        seen += count
        lower = float(upper) if upper is not None else lower
    return float(LATENCY_BOUNDS_MS[-1])


def window_start(end: datetime) -> datetime:
    """Midnight starting the 30 days (today included) that the daily chart shows."""
    return datetime.combine(end.date() - timedelta(days=WINDOW_DAYS - 1), time())


def summarize(
    *,
    merchant_id: int,
    key_id: int | None = None,
    key_ids: list[int] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    recent: bool = True,
    recent_outcome: str | None = None,
) -> UsageSummary:
    """Usage of one key, some keys, or every key of the merchant between start and end."""
    now = now or utcnow()
    end = end or now
    start = start or window_start(end)
    summary = UsageSummary(start=start, end=end)
    scope: list[ColumnElement[bool]] = [UsageHourly.merchant_id == merchant_id]
    if key_id is not None:
        scope.append(UsageHourly.api_key_id == key_id)
    if key_ids is not None:
        scope.append(UsageHourly.api_key_id.in_(key_ids))

    summary.total_calls = db.session.scalar(
        select(func.coalesce(func.sum(UsageHourly.calls), 0)).where(*scope)
    )
    sums = [
        func.sum(UsageHourly.__table__.c[name])
        for name in ("calls", "latency_sum_ms", *OUTCOMES, *LATENCY_COLUMNS)
    ]
    rows = db.session.execute(
        select(UsageHourly.hour, *sums)
        .where(*scope, UsageHourly.hour >= start_of_hour(start), UsageHourly.hour < end)
        .group_by(UsageHourly.hour)
    ).all()
    by_hour: dict[datetime, int] = {}
    by_day: dict[date, int] = {}
    outcomes = dict.fromkeys(OUTCOMES, 0)
    histogram = [0] * len(LATENCY_COLUMNS)
    last_hour = start_of_hour(now)
    first_hour_of_24 = last_hour - timedelta(hours=23)  # the 24 hourly bars, this hour included
    for hour, calls, latency_sum, *rest in rows:
        calls = int(calls or 0)
        by_hour[hour] = calls
        by_day[hour.date()] = by_day.get(hour.date(), 0) + calls
        summary.window_calls += calls
        summary.latency_sum_ms += float(latency_sum or 0)
        if first_hour_of_24 <= hour <= last_hour:
            summary.calls_24h += calls
        for index, name in enumerate(OUTCOMES):
            outcomes[name] += int(rest[index] or 0)
        failed = calls - int(rest[OUTCOMES.index("ok")] or 0)
        summary.hourly_errors[hour] = failed
        summary.daily_errors[hour.date()] = summary.daily_errors.get(hour.date(), 0) + failed
        for index in range(len(LATENCY_COLUMNS)):
            histogram[index] += int(rest[len(OUTCOMES) + index] or 0)
    summary.outcomes = outcomes
    summary.histogram = histogram
    summary.hourly = [
        (last_hour - timedelta(hours=offset), by_hour.get(last_hour - timedelta(hours=offset), 0))
        for offset in range(23, -1, -1)
    ]
    today = now.date()
    summary.daily = [
        (today - timedelta(days=offset), by_day.get(today - timedelta(days=offset), 0))
        for offset in range(WINDOW_DAYS - 1, -1, -1)
    ]
    last_day = (end - timedelta(microseconds=1)).date()  # end is exclusive
    summary.top_endpoints = top_endpoints(
        merchant_id, key_id, start.date(), last_day, key_ids=key_ids
    )
    if recent:
        summary.recent = recent_calls(merchant_id, key_id, outcome=recent_outcome)
    return summary


def top_endpoints(
    merchant_id: int,
    key_id: int | None,
    first_day: date,
    last_day: date,
    limit: int = 10,
    key_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """The most called routes between two days."""
    scope = [UsageEndpointDaily.merchant_id == merchant_id]
    if key_id is not None:
        scope.append(UsageEndpointDaily.api_key_id == key_id)
    if key_ids is not None:
        scope.append(UsageEndpointDaily.api_key_id.in_(key_ids))
    calls = func.sum(UsageEndpointDaily.calls)
    rows = db.session.execute(
        select(
            UsageEndpointDaily.method,
            UsageEndpointDaily.route,
            calls,
            func.sum(UsageEndpointDaily.errors),
        )
        .where(*scope, UsageEndpointDaily.day >= first_day, UsageEndpointDaily.day <= last_day)
        .group_by(UsageEndpointDaily.method, UsageEndpointDaily.route)
        .order_by(calls.desc(), UsageEndpointDaily.route)
        .limit(limit)
    )
    return [
        {"method": method, "route": route, "calls": int(count), "errors": int(errors or 0)}
        for method, route, count, errors in rows
    ]


def recent_calls(
    merchant_id: int, key_id: int | None, limit: int = 50, outcome: str | None = None
) -> list[UsageCall]:
    """The latest calls, newest first (only those with `outcome`, if given)."""
    query = select(UsageCall).where(UsageCall.merchant_id == merchant_id)
    if outcome in OUTCOMES:
        query = query.where(UsageCall.outcome == outcome)
    if key_id is not None:
        query = query.where(UsageCall.api_key_id == key_id)
    return list(db.session.scalars(query.order_by(UsageCall.id.desc()).limit(limit)))


def busiest_keys(
    merchant_id: int, now: datetime | None = None, limit: int = 5
) -> list[tuple[ApiKey, int]]:
    """The merchant's keys with the most calls in the last 30 days."""
    now = now or utcnow()
    calls = func.sum(UsageHourly.calls)
    rows = db.session.execute(
        select(ApiKey, calls)
        .join(UsageHourly, UsageHourly.api_key_id == ApiKey.id)
        .where(
            UsageHourly.merchant_id == merchant_id,
            UsageHourly.hour >= window_start(now),
        )
        .group_by(ApiKey.id)
        .order_by(calls.desc())
        .limit(limit)
    )
    return [(key, int(count)) for key, count in rows]


def expiring_keys(merchant_id: int, now: datetime | None = None) -> list[ApiKey]:
    """The merchant's active keys that expire within 7 days, soonest first (one query)."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(
                ApiKey.merchant_id == merchant_id,
                ApiKey.expires_at > now,
                ApiKey.expires_at <= now + EXPIRING_SOON,
                or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > now),
            )
            .order_by(ApiKey.expires_at, ApiKey.id)
        )
    )


def per_key_summaries(
    merchant_id: int, start: datetime | None = None, end: datetime | None = None
) -> list[tuple[ApiKey, UsageSummary]]:
    """Every key of the merchant with its figures (for the overview CSV and the API)."""
    keys = db.session.scalars(
        select(ApiKey).where(ApiKey.merchant_id == merchant_id).order_by(ApiKey.id)
    ).all()
    return [
        (key, summarize(merchant_id=merchant_id, key_id=key.id, start=start, end=end, recent=False))
        for key in keys
    ]


def hourly_rows(merchant_id: int, key_id: int) -> list[Any]:
    """A key's hourly rollups, oldest first, as plain rows (for CSV).

    Plain column rows, read now: a streamed response is written after the request's session
    is gone, so ORM objects (or a live cursor) would fail there. A key has at most one row per
    hour of the retention window.
    """
    table = UsageHourly.__table__
    return list(
        db.session.execute(
            select(
                table.c.hour,
                table.c.calls,
                table.c.latency_sum_ms,
                *(table.c[name] for name in OUTCOMES),
            )
            .where(table.c.merchant_id == merchant_id, table.c.api_key_id == key_id)
            .order_by(table.c.hour)
        ).all()
    )
