"""Engine tuning (SQLite in WAL mode with a busy timeout and foreign keys) and UTC times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

ID_MAX = 2**31 - 1  # the largest id an INTEGER column holds (PostgreSQL and SQLite alike)


def utcnow() -> datetime:
    """The current UTC time as a naive datetime (the form every column stores)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_utc(moment: datetime, timespec: str = "seconds") -> str:
    """A stored (naive UTC) time as ISO 8601 with a Z, e.g. 2026-01-31T12:00:00Z."""
    return moment.isoformat(timespec=timespec) + "Z"


def start_of_hour(moment: datetime) -> datetime:
    """The start of the hour of a moment."""
    return moment.replace(minute=0, second=0, microsecond=0)


def tune_sqlite(engine: Engine) -> None:
    """Turn on WAL, a busy timeout and foreign keys for every SQLite connection."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
