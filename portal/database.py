"""Engine tuning: SQLite in WAL mode with a busy timeout and foreign keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def utcnow() -> datetime:
    """The current UTC time as a naive datetime (the form every column stores)."""
    return datetime.now(UTC).replace(tzinfo=None)


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
