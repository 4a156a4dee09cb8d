"""`flask --app wsgi prune-usage`: rollups past the retention and calls beyond the last 50 go."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from portal.accounts.models import User
from portal.extensions import db
from portal.usage import rollup
from portal.usage.models import UsageCall, UsageEndpointDaily, UsageHourly
from tests.conftest import make_key
from tests.helpers import count
from tests.usage.conftest import NOW, recent, record, write


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prune as if it were NOW (2026-11-20 10:30)."""
    monkeypatch.setattr(rollup, "utcnow", lambda: NOW)


def _extra_calls(key: object, number: int) -> None:
    """Calls beyond the last 50 of a key, as an interrupted flush might leave them."""
    db.session.execute(
        UsageCall.__table__.insert(),
        [
            {
                "api_key_id": key.id,
                "merchant_id": key.merchant_id,
                "at": NOW - timedelta(days=1),
                "method": "GET",
                "route": "/api/v1/key",
                "status": 200,
                "latency_ms": 1.0,
                "origin": None,
                "outcome": "ok",
            }
            for _ in range(number)
        ],
    )
    db.session.commit()


def test_prune_removes_old_rollups_and_extra_calls(
    app: Flask, runner: FlaskCliRunner, user: User
) -> None:
    key = make_key(user, "secret")[0]
    other = make_key(user, "publishable")[0]
    write(
        record(key, datetime(2026, 11, 8, 12, 0)),
        record(key, datetime(2026, 11, 10, 9, 0)),
        record(key, datetime(2026, 11, 10, 11, 0)),
        *[record(key, NOW)] * 3,
        record(other, datetime(2026, 10, 1, 8, 0)),
    )
    _extra_calls(other, 70)
    newest_of_other = [call.id for call in recent(other.id)][:50]

    result = runner.invoke(args=["prune-usage", "--retention-days", "10"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Kept 10 days. Removed 3 hourly rollups, 2 daily endpoint rows and 21 old calls."
    )
    db.session.expire_all()
    assert sorted(row.hour for row in UsageHourly.query) == [
        datetime(2026, 11, 10, 11),
        datetime(2026, 11, 20, 10),
    ]
    assert sorted(row.day for row in UsageEndpointDaily.query) == [
        date(2026, 11, 10),
        date(2026, 11, 20),
    ]
    assert [call.id for call in recent(other.id)] == newest_of_other
    assert len(recent(key.id)) == 6


def test_prune_defaults_to_the_configured_retention(
    app: Flask, runner: FlaskCliRunner, user: User
) -> None:
    key = make_key(user, "secret")[0]
    write(record(key, NOW - timedelta(days=401)), record(key, NOW - timedelta(days=399)))
    result = runner.invoke(args=["prune-usage"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Kept 400 days. Removed 1 hourly rollups")
    db.session.expire_all()
    assert [row.hour for row in UsageHourly.query] == [datetime(2025, 10, 17, 10)]


def test_prune_with_nothing_to_remove(app: Flask, runner: FlaskCliRunner, user: User) -> None:
    key = make_key(user, "secret")[0]
    write(record(key, NOW))
    result = runner.invoke(args=["prune-usage", "--retention-days", "30"])
    assert result.exit_code == 0
    assert "Removed 0 hourly rollups, 0 daily endpoint rows and 0 old calls" in result.output
    assert count(UsageHourly) == count(UsageCall) == 1


@pytest.mark.parametrize("days", ["0", "-3", "many"])
def test_a_retention_below_one_day_is_refused(
    app: Flask, runner: FlaskCliRunner, user: User, days: str
) -> None:
    key = make_key(user, "secret")[0]
    write(record(key, NOW - timedelta(days=2)))
    result = runner.invoke(args=["prune-usage", "--retention-days", days])
    assert result.exit_code != 0
    assert "--retention-days" in result.output
    assert count(UsageHourly) == 1
