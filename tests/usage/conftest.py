"""Usage fixtures: a frozen clock, call records written straight into the rollups, flushing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.usage import recording, rollup, stats
from portal.usage.models import UsageCall, UsageHourly
from portal.usage.recorder import CallRecord, UsageRecorder
from tests.api.conftest import recorded_statements

# A fixed "now" for tests that freeze the clock: half past ten on a Friday.
NOW = datetime(2026, 11, 20, 10, 30)


def record(
    key: Any,
    at: datetime,
    *,
    method: str = "GET",
    route: str = "/api/v1/key",
    status: int = 200,
    latency_ms: float = 5.0,
    origin: str | None = None,
    outcome: str = "ok",
) -> CallRecord:
    """One call of `key` at `at`."""
    return CallRecord(
        api_key_id=key.id,
        merchant_id=key.merchant_id,
        at=at,
        method=method,
        route=route,
        status=status,
        latency_ms=latency_ms,
        origin=origin,
        outcome=outcome,
    )


def write(*calls: CallRecord) -> None:
    """Fold calls into the usage tables, as a flush does."""
    rollup.write_batch(list(calls))
    db.session.expire_all()


def hourly_rows(key_id: int) -> list[Any]:
    """A key's hourly rollups, oldest first (fresh from the database)."""
    db.session.expire_all()
    table = UsageHourly.__table__
    return list(
        db.session.execute(select(table).where(table.c.api_key_id == key_id).order_by(table.c.hour))
    )


def outcome_totals(key_id: int) -> dict[str, int]:
    """A key's calls by outcome, over all its hourly rollups (zeros left out)."""
    totals: dict[str, int] = {}
    for row in hourly_rows(key_id):
        for name in (*stats.OUTCOMES, "calls"):
            totals[name] = totals.get(name, 0) + getattr(row, name)
    return {name: value for name, value in totals.items() if value}


def recent(key_id: int) -> list[UsageCall]:
    """A key's recorded calls, newest first."""
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(UsageCall).where(UsageCall.api_key_id == key_id).order_by(UsageCall.id.desc())
        )
    )


@pytest.fixture(autouse=True)
def _flush_leftovers(app: Flask) -> Iterator[None]:
    """Write what a test left buffered before its app goes, not at the interpreter's exit."""
    yield
    app.extensions["usage_recorder"].flush()


@pytest.fixture
def recorder(app: Flask) -> UsageRecorder:
    """The app's usage recorder (tests flush it by hand)."""
    return app.extensions["usage_recorder"]


@pytest.fixture
def flush(recorder: UsageRecorder) -> Callable[[], int]:
    """Write what the recorder buffered; returns how many calls were written."""

    def run() -> int:
        written = recorder.flush()
        db.session.rollback()  # end the test session's transaction: read what the flush wrote
        return written

    return run


@pytest.fixture
def freeze(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """`freeze(moment)` stops the clock of recording and of the figures at `moment`."""

    def stop_at(moment: datetime) -> None:
        monkeypatch.setattr(recording, "utcnow", lambda: moment)
        monkeypatch.setattr(stats, "utcnow", lambda: moment)

    return stop_at


@pytest.fixture
def sql_statements(app: Flask) -> Callable[[], Any]:
    """`with sql_statements() as statements:` records the SQL run inside the block."""
    return lambda: recorded_statements(app)
