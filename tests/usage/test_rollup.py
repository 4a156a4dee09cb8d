"""Rollups: calls folded into hours, days and the last 50 calls, with exact sums across batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import ApiKey
from portal.usage import rollup
from portal.usage.models import LATENCY_COLUMNS, UsageEndpointDaily
from portal.usage.recorder import UsageRecorder
from tests.api.conftest import bearer
from tests.conftest import make_key
from tests.usage.conftest import NOW, hourly_rows, recent, record, write


@pytest.fixture
def key(user: User) -> ApiKey:
    """A secret key of the user's merchant."""
    return make_key(user, "secret")[0]


def test_calls_either_side_of_the_hour_land_in_two_hours(
    client: FlaskClient,
    user: User,
    freeze: Callable[[datetime], None],
    flush: Callable[[], int],
) -> None:
    key, token = make_key(user, "secret")
    for moment in (datetime(2026, 11, 20, 10, 59, 59), datetime(2026, 11, 20, 11, 0, 0)):
        freeze(moment)
        assert client.get("/api/v1/key", headers=bearer(token)).status_code == 200
    freeze(datetime(2026, 11, 20, 11, 0, 0, 1))
    client.get("/api/v1/key", headers=bearer(token))

    flush()
    assert [(row.hour, row.calls, row.ok) for row in hourly_rows(key.id)] == [
        (datetime(2026, 11, 20, 10), 1, 1),
        (datetime(2026, 11, 20, 11), 2, 2),
    ]


def test_calls_either_side_of_midnight_land_on_two_days(key: ApiKey) -> None:
    write(
        record(key, datetime(2026, 11, 20, 23, 59, 59, 999_999)),
        record(key, datetime(2026, 11, 21, 0, 0, 0)),
        record(key, datetime(2026, 11, 21, 0, 0, 1), status=404, outcome="client_error"),
    )
    rows = UsageEndpointDaily.query.order_by(UsageEndpointDaily.day).all()
    assert [(row.day.isoformat(), row.calls, row.errors) for row in rows] == [
        ("2026-11-20", 1, 0),
        ("2026-11-21", 2, 1),
    ]
    assert [row.hour.hour for row in hourly_rows(key.id)] == [23, 0]


def test_two_flushes_into_the_same_hour_add_up(key: ApiKey) -> None:
    write(
        record(key, NOW, latency_ms=3.0),
        record(
            key, NOW + timedelta(minutes=1), latency_ms=40.0, status=404, outcome="client_error"
        ),
    )
    write(
        record(key, NOW + timedelta(minutes=2), latency_ms=0.5),
        record(
            key, NOW + timedelta(minutes=3), latency_ms=3000.0, status=500, outcome="server_error"
        ),
        record(key, NOW + timedelta(minutes=4), status=429, outcome="rate_limited"),
    )
    [row] = hourly_rows(key.id)
    assert row.hour == datetime(2026, 11, 20, 10)
    assert row.merchant_id == key.merchant_id
    assert (row.calls, row.ok, row.client_error, row.server_error, row.rate_limited) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert row.latency_sum_ms == pytest.approx(3.0 + 40.0 + 0.5 + 3000.0 + 5.0)
    histogram = {name: getattr(row, name) for name in LATENCY_COLUMNS if getattr(row, name)}
    assert histogram == {
        "latency_le_1": 1,
        "latency_le_5": 2,
        "latency_le_50": 1,
        "latency_slower": 1,
    }


def test_batches_from_two_processes_into_one_hour_sum(app: Flask, user: User, key: ApiKey) -> None:
    other_key = make_key(user, "publishable")[0]
    recorders = [
        UsageRecorder(lambda batch: _write_in(app, batch), flush_interval=0) for _ in range(2)
    ]
    for index, recorder in enumerate(recorders):
        for second in range(3 + index):
            recorder.record(record(key, NOW + timedelta(seconds=second)))
        recorder.record(record(other_key, NOW))
    for recorder in recorders:
        recorder.flush()

    assert [(row.calls, row.ok) for row in hourly_rows(key.id)] == [(7, 7)]
    assert [row.calls for row in hourly_rows(other_key.id)] == [2]
    endpoint = UsageEndpointDaily.query.filter_by(api_key_id=key.id).one()
    assert endpoint.calls == 7


def _write_in(app: Flask, batch: list[Any]) -> None:
    """Write a batch in its own app context, as another process's flusher would."""
    with app.app_context():
        rollup.write_batch(batch)


@pytest.mark.parametrize(
    ("latency_ms", "column"),
    [
        (0.0, "latency_le_1"),
        (1.0, "latency_le_1"),
        (1.01, "latency_le_2"),
        (9.99, "latency_le_10"),
        (250.0, "latency_le_250"),
        (2500.0, "latency_le_2500"),
        (2500.01, "latency_slower"),
        (60_000.0, "latency_slower"),
    ],
)
def test_latency_falls_in_its_histogram_bucket(latency_ms: float, column: str) -> None:
    assert rollup.latency_column(latency_ms) == column


def test_only_the_last_50_calls_of_each_key_are_kept(user: User, key: ApiKey) -> None:
    other_key = make_key(user, "publishable")[0]
    write(*(record(key, NOW + timedelta(seconds=second)) for second in range(30)))
    write(record(other_key, NOW, route="/api/v1/catalog/products"))
    write(*(record(key, NOW + timedelta(seconds=30 + second)) for second in range(40)))

    kept = recent(key.id)
    assert len(kept) == 50
    assert [call.at for call in kept] == [
        NOW + timedelta(seconds=69 - index) for index in range(50)
    ]
    assert [call.route for call in recent(other_key.id)] == ["/api/v1/catalog/products"]
    [row] = hourly_rows(key.id)
    assert row.calls == 70  # the rollups still count every call


def test_a_batch_larger_than_50_calls_keeps_its_newest(key: ApiKey) -> None:
    write(*(record(key, NOW + timedelta(seconds=second)) for second in range(120)))
    kept = recent(key.id)
    assert len(kept) == 50
    assert kept[0].at == NOW + timedelta(seconds=119)
    assert kept[-1].at == NOW + timedelta(seconds=70)


def test_long_origins_are_cut_and_empty_ones_stored_as_none(key: ApiKey) -> None:
    write(record(key, NOW, origin="https://" + "a" * 300 + ".example"), record(key, NOW, origin=""))
    assert [len(call.origin or "") for call in recent(key.id)] == [0, 255]


def _last_used(key_id: int) -> datetime | None:
    db.session.expire_all()
    return db.session.get(ApiKey, key_id).last_used_at


def test_last_used_is_the_minute_of_the_latest_call(key: ApiKey) -> None:
    write(
        record(key, datetime(2026, 11, 20, 10, 31, 45, 123)),
        record(key, datetime(2026, 11, 20, 10, 29, 5)),
    )
    assert _last_used(key.id) == datetime(2026, 11, 20, 10, 31)

    write(record(key, datetime(2026, 11, 20, 10, 20)))  # a late batch never moves it back
    assert _last_used(key.id) == datetime(2026, 11, 20, 10, 31)

    write(record(key, datetime(2026, 11, 20, 10, 32, 0)))
    assert _last_used(key.id) == datetime(2026, 11, 20, 10, 32)


def test_last_used_is_written_at_most_once_a_minute(
    app: Flask, user: User, key: ApiKey, sql_statements: Callable[[], Any]
) -> None:
    other_key = make_key(user, "publishable")[0]

    def key_updates(*calls: Any) -> list[str]:
        with sql_statements() as statements:
            write(*calls)
        return [
            statement
            for statement in statements
            if statement.lstrip().upper().startswith("UPDATE API_KEYS")
        ]

    assert len(key_updates(record(key, NOW), record(other_key, NOW))) == 2
    assert key_updates(record(key, NOW + timedelta(seconds=20))) == []
    assert key_updates(record(key, NOW + timedelta(seconds=59))) == []
    assert len(key_updates(record(key, NOW + timedelta(seconds=60)))) == 1  # 10:31
    assert _last_used(key.id) == NOW + timedelta(minutes=1)
    assert _last_used(other_key.id) == NOW


def test_last_used_updates_change_at_most_one_row_a_minute(app: Flask, key: ApiKey) -> None:
    updated_rows: list[int] = []

    def count_rows(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            updated_rows.append(cursor.rowcount)

    event.listen(db.engine, "after_cursor_execute", count_rows)
    try:
        for second in (0, 10, 59, 60, 70):
            write(record(key, NOW + timedelta(seconds=second)))
        # Another worker has not stamped this key yet: its UPDATE finds 10:31 there, changes
        # nothing, and a late call never moves last_used back.
        app.extensions.pop("usage_last_used_written")
        write(record(key, NOW + timedelta(seconds=80)), record(key, NOW - timedelta(minutes=5)))
    finally:
        event.remove(db.engine, "after_cursor_execute", count_rows)
    assert updated_rows == [1, 1, 0]  # 10:30 once, 10:31 once, then nothing
    assert _last_used(key.id) == NOW + timedelta(minutes=1)
