"""Writing a batch of calls: hourly rollups, daily endpoint counts, recent calls, last used."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from portal.database import start_of_hour, utcnow
from portal.extensions import db
from portal.keys.models import ApiKey
from portal.usage.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    OUTCOMES,
    UsageCall,
    UsageEndpointDaily,
    UsageHourly,
)
from portal.usage.recorder import CallRecord

RECENT_PER_KEY = 50


def latency_column(latency_ms: float) -> str:
    """The histogram column a latency falls in."""
    for bound, column in zip(LATENCY_BOUNDS_MS, LATENCY_COLUMNS, strict=False):
        if latency_ms <= bound:
            return column
    return LATENCY_COLUMNS[-1]


def _upsert(table: Table, rows: list[dict[str, Any]], keys: list[str], counters: list[str]) -> None:
    """Insert rows, or add their counters to the rows already there (atomic on both engines)."""
    if not rows:
        return
    dialect = db.engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: table.c[name] + statement.excluded[name] for name in counters},
    )
    db.session.execute(statement, rows)


def write_batch(calls: list[CallRecord]) -> None:
    """Fold a batch of calls into the usage tables in one transaction."""
    hourly: dict[tuple[int, datetime], dict[str, Any]] = {}
    endpoints: dict[tuple[int, date, str, str], dict[str, Any]] = {}
    recent: dict[int, list[CallRecord]] = defaultdict(list)
    last_used: dict[int, datetime] = {}
    for call in calls:
        row = hourly.setdefault(
            (call.api_key_id, start_of_hour(call.at)),
            {
                "api_key_id": call.api_key_id,
                "hour": start_of_hour(call.at),
                "merchant_id": call.merchant_id,
                "calls": 0,
                "latency_sum_ms": 0.0,
                **dict.fromkeys(OUTCOMES, 0),
                **dict.fromkeys(LATENCY_COLUMNS, 0),
            },
        )
        row["calls"] += 1
        row[call.outcome] += 1
        row["latency_sum_ms"] += call.latency_ms
        row[latency_column(call.latency_ms)] += 1
        endpoint = endpoints.setdefault(
            (call.api_key_id, call.at.date(), call.method, call.route),
            {
                "api_key_id": call.api_key_id,
                "day": call.at.date(),
                "method": call.method,
                "route": call.route,
                "merchant_id": call.merchant_id,
                "calls": 0,
                "errors": 0,
            },
        )
        endpoint["calls"] += 1
        endpoint["errors"] += call.outcome != "ok"
        recent[call.api_key_id].append(call)
        minute = call.at.replace(second=0, microsecond=0)
        last_used[call.api_key_id] = max(minute, last_used.get(call.api_key_id, minute))

    # Rows in key order: two workers upserting the same rows lock them in the same order and
    # cannot deadlock each other (PostgreSQL).
    counters = ["calls", "latency_sum_ms", *OUTCOMES, *LATENCY_COLUMNS]
    _upsert(
        UsageHourly.__table__,
        [hourly[row_key] for row_key in sorted(hourly)],
        ["api_key_id", "hour"],
        counters,
    )
    _upsert(
        UsageEndpointDaily.__table__,
        [endpoints[row_key] for row_key in sorted(endpoints)],
        ["api_key_id", "day", "method", "route"],
        ["calls", "errors"],
    )
    _write_recent(recent)
    touched = _touch_last_used(dict(sorted(last_used.items())))
    db.session.commit()
    _last_used_written().update(touched)


def _write_recent(recent: dict[int, list[CallRecord]]) -> None:
    """Append the newest calls of each key and keep only the last RECENT_PER_KEY."""
    rows = [
        {
            "api_key_id": call.api_key_id,
            "merchant_id": call.merchant_id,
            "at": call.at,
            "method": call.method,
            "route": call.route,
            "status": call.status,
            "latency_ms": round(call.latency_ms, 2),
            "origin": (call.origin or None) and call.origin[:255],
            "error_code": (call.error_code or None) and call.error_code[:40],
            "client_ip": (call.client_ip or None) and call.client_ip[:45],
            "request_id": (call.request_id or None) and call.request_id[:40],
            "outcome": call.outcome,
        }
        for calls in recent.values()
        for call in calls[-RECENT_PER_KEY:]
    ]
    if rows:
        db.session.execute(UsageCall.__table__.insert(), rows)
    for key_id in sorted(recent):
        prune_recent_calls(key_id)


def prune_recent_calls(key_id: int) -> None:
    """Delete a key's calls older than its last RECENT_PER_KEY."""
    cutoff = (
        select(UsageCall.id)
        .where(UsageCall.api_key_id == key_id)
        .order_by(UsageCall.id.desc())
        .offset(RECENT_PER_KEY)
        .limit(1)
        .scalar_subquery()
    )
    db.session.execute(
        delete(UsageCall).where(UsageCall.api_key_id == key_id, UsageCall.id <= cutoff)
    )


def _last_used_written() -> dict[int, datetime]:
    """The last_used_at minute this process has committed per key (this app's memory)."""
    return current_app.extensions.setdefault("usage_last_used_written", {})


def _touch_last_used(last_used: dict[int, datetime]) -> dict[int, datetime]:
    """Set last_used_at to the minute of the latest call: at most one write a minute per key.

    A key this process already stamped with that minute costs no statement at all; the WHERE
    clause keeps other processes (and late batches) from writing the same minute again or
    moving it back. Returns the minutes written, to remember once the transaction commits.
    """
    written = _last_used_written()
    touched: dict[int, datetime] = {}
    for key_id, minute in last_used.items():
        if key_id in written and written[key_id] >= minute:
            continue
        db.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < minute),
            )
            .values(last_used_at=minute)
        )
        touched[key_id] = minute
    return touched


def prune(retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete rollups older than the retention window and calls beyond the last 50 per key."""
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    hourly = db.session.execute(delete(UsageHourly).where(UsageHourly.hour < cutoff)).rowcount
    daily = db.session.execute(
        delete(UsageEndpointDaily).where(UsageEndpointDaily.day < cutoff.date())
    ).rowcount
    before = db.session.scalar(select(db.func.count()).select_from(UsageCall)) or 0
    for key_id in db.session.scalars(select(UsageCall.api_key_id).distinct()).all():
        prune_recent_calls(key_id)
    after = db.session.scalar(select(db.func.count()).select_from(UsageCall)) or 0
    db.session.commit()
    return {"hourly": hourly, "endpoint_daily": daily, "calls": before - after}
