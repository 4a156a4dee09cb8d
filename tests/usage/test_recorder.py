"""The recorder: a per-process buffer that loses nothing on shutdown, failure or contention."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.usage import recorder as recorder_module
from portal.usage import rollup
from portal.usage.recorder import CallRecord, UsageRecorder
from tests.api.conftest import bearer
from tests.conftest import make_key
from tests.usage.conftest import NOW, outcome_totals, recent, record

ROOT = Path(__file__).resolve().parents[2]


class Sink:
    """A write_batch that keeps every batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[CallRecord]] = []

    def __call__(self, batch: list[CallRecord]) -> None:
        self.batches.append(list(batch))

    @property
    def calls(self) -> list[CallRecord]:
        return [call for batch in self.batches for call in batch]


def numbered(count: int, start: int = 0) -> list[CallRecord]:
    """Distinct calls, told apart by their status field."""
    return [
        CallRecord(1, 1, NOW, "GET", "/api/v1/key", start + number, 1.0, None, "ok")
        for number in range(count)
    ]


def test_stop_writes_what_is_buffered(
    client: FlaskClient, user: User, recorder: UsageRecorder
) -> None:
    key, token = make_key(user, "secret")
    for _ in range(3):
        client.get("/api/v1/key", headers=bearer(token))
    assert recorder.pending() == 3

    recorder.stop()  # gunicorn's worker_exit

    assert recorder.pending() == 0
    assert outcome_totals(key.id) == {"calls": 3, "ok": 3}


def test_the_recorder_flushes_itself_at_exit() -> None:
    sink = Sink()
    registered: list[tuple[Callable[..., object], tuple[object, ...]]] = []
    original = recorder_module.atexit.register

    def register(handler: Callable[..., object], *args: object) -> None:
        registered.append((handler, args))

    recorder_module.atexit.register = register  # type: ignore[assignment]
    try:
        recorder = UsageRecorder(sink, flush_interval=0)
    finally:
        recorder_module.atexit.register = original  # type: ignore[assignment]
    for call in numbered(2):
        recorder.record(call)

    for handler, args in registered:
        handler(*args)

    assert sink.calls == numbered(2)


def test_a_process_that_exits_writes_its_buffered_calls(
    app: Flask, database_url: str, user: User, tmp_path: Path
) -> None:
    key, token = make_key(user, "secret")
    pepper = app.config["API_KEY_PEPPER"]
    script = textwrap.dedent(
        f"""
        from tests.conftest import test_config
        from portal import create_app

        # A long flush interval: only the exit can write these calls.
        app = create_app(
            test_config({database_url!r}, USAGE_FLUSH_SECONDS=3600, API_KEY_PEPPER={pepper!r})
        )
        client = app.test_client()
        statuses = [
            client.get("/api/v1/key", headers={{"Authorization": "Bearer {token}"}}).status_code
            for _ in range(4)
        ]
        assert statuses == [200] * 4, statuses
        assert app.extensions["usage_recorder"].pending() == 4
        """
    )
    environment = {**os.environ, "PORTAL_INSTANCE_PATH": str(tmp_path)}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert outcome_totals(key.id) == {"calls": 4, "ok": 4}


def test_a_failed_write_keeps_the_calls_for_the_next_flush(
    app: Flask,
    user: User,
    recorder: UsageRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = make_key(user, "secret")[0]
    for second in range(5):
        recorder.record(record(key, NOW + timedelta(seconds=second)))

    def unavailable(_batch: list[CallRecord]) -> None:
        raise ConnectionError("database is down")

    working = rollup.write_batch
    monkeypatch.setattr(rollup, "write_batch", unavailable)
    assert recorder.flush() == 0
    assert recorder.pending() == 5
    assert outcome_totals(key.id) == {}

    monkeypatch.setattr(rollup, "write_batch", working)
    recorder.record(record(key, NOW + timedelta(seconds=9)))
    assert recorder.flush() == 6
    assert outcome_totals(key.id) == {"calls": 6, "ok": 6}
    assert [call.at.second for call in recent(key.id)] == [9, 4, 3, 2, 1, 0]


def test_a_write_failing_halfway_counts_nothing_twice(
    app: Flask, user: User, recorder: UsageRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_key(user, "secret")[0]
    for _ in range(3):
        recorder.record(record(key, NOW))

    def broken(_recent: object) -> None:
        raise RuntimeError("disk full")

    working = rollup._write_recent
    monkeypatch.setattr(rollup, "_write_recent", broken)  # after the rollups were upserted
    assert recorder.flush() == 0
    assert outcome_totals(key.id) == {}  # rolled back as a whole

    monkeypatch.setattr(rollup, "_write_recent", working)
    assert recorder.flush() == 3
    assert outcome_totals(key.id) == {"calls": 3, "ok": 3}
    assert len(recent(key.id)) == 3


def test_a_full_buffer_drops_new_calls_and_counts_them() -> None:
    sink = Sink()
    recorder = UsageRecorder(sink, flush_interval=0, max_buffer=3)
    for call in numbered(5):
        recorder.record(call)
    assert recorder.pending() == 3
    assert recorder.dropped == 2
    recorder.flush()
    assert sink.calls == numbered(3)


def test_a_failed_write_never_grows_the_buffer_past_its_bound() -> None:
    failing = True
    sink = Sink()

    def write(batch: list[CallRecord]) -> None:
        if failing:
            raise ConnectionError("down")
        sink(batch)

    recorder = UsageRecorder(write, flush_interval=0, max_buffer=4)
    for call in numbered(3):
        recorder.record(call)
    assert recorder.flush() == 0
    for call in numbered(3, start=100):
        recorder.record(call)
    assert recorder.pending() == 4
    assert recorder.flush() == 0
    assert recorder.pending() == 4

    failing = False
    recorder.flush()
    assert [call.status for call in sink.calls] == [0, 1, 2, 100]


def test_a_forked_worker_does_not_write_its_parents_calls_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = Sink()
    recorder = UsageRecorder(sink, flush_interval=0)
    parent_calls = numbered(2)
    for call in parent_calls:
        recorder.record(call)
    recorder.flush()  # the parent writes its own calls

    for call in numbered(2, start=10):
        recorder.record(call)  # still in the parent's buffer when it forks
    child_pid = os.getpid() + 1
    monkeypatch.setattr(recorder_module.os, "getpid", lambda: child_pid)
    child_call = numbered(1, start=20)[0]
    recorder.record(child_call)
    recorder.flush()

    assert sink.calls == [*parent_calls, child_call]


def test_the_flusher_thread_writes_without_being_asked_and_stops() -> None:
    written = threading.Event()
    sink = Sink()

    def write(batch: list[CallRecord]) -> None:
        sink(batch)
        written.set()

    recorder = UsageRecorder(write, flush_interval=0.01)
    recorder.record(numbered(1)[0])
    assert written.wait(10), "the flusher thread never wrote"
    recorder.stop()
    thread = recorder._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()
    assert sink.calls == numbered(1)


def test_concurrent_recording_and_flushing_loses_and_repeats_nothing() -> None:
    sink = Sink()
    recorder = UsageRecorder(sink, flush_interval=0)
    threads, per_thread = 8, 2_000
    finished = threading.Event()

    def produce(index: int) -> None:
        for call in numbered(per_thread, start=index * per_thread):
            recorder.record(call)

    def flush_until_done() -> None:
        while not finished.is_set():
            recorder.flush()

    flusher = threading.Thread(target=flush_until_done)
    flusher.start()
    producers = [threading.Thread(target=produce, args=(index,)) for index in range(threads)]
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join()
    finished.set()
    flusher.join()
    recorder.flush()

    statuses = sorted(call.status for call in sink.calls)
    assert statuses == list(range(threads * per_thread))
    assert len(sink.batches) > 1  # the flushes really ran while calls were coming in


def test_concurrent_calls_and_flushes_land_in_the_database_exactly_once(
    app: Flask, user: User, recorder: UsageRecorder
) -> None:
    keys = [make_key(user, "secret", label=f"key {index}")[0] for index in range(4)]
    per_key = 300
    moment = datetime(2026, 11, 20, 10, 0)
    finished = threading.Event()
    errors: list[BaseException] = []

    batches = [
        [record(key, moment + timedelta(seconds=number)) for number in range(per_key)]
        for key in keys
    ]

    def produce(key_index: int) -> None:
        for call in batches[key_index]:
            recorder.record(call)

    def flush_until_done() -> None:
        try:
            while not finished.is_set():
                recorder.flush()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    flushers = [threading.Thread(target=flush_until_done) for _ in range(2)]
    for flusher in flushers:
        flusher.start()
    producers = [threading.Thread(target=produce, args=(index,)) for index in range(len(keys))]
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join()
    finished.set()
    for flusher in flushers:
        flusher.join()
    recorder.flush()

    assert errors == []
    assert recorder.pending() == 0
    for key in keys:
        assert outcome_totals(key.id) == {"calls": per_key, "ok": per_key}
        assert len(recent(key.id)) == rollup.RECENT_PER_KEY


def test_calls_that_no_longer_fit_after_a_failed_write_are_counted_as_dropped() -> None:
    recorder: UsageRecorder

    def write(_batch: list[CallRecord]) -> None:
        for call in numbered(2, start=100):  # requests keep coming while the database is down
            recorder.record(call)
        raise ConnectionError("down")

    recorder = UsageRecorder(write, flush_interval=0, max_buffer=4)
    for call in numbered(3):
        recorder.record(call)
    assert recorder.flush() == 0
    assert recorder.pending() == 4
    assert recorder.dropped == 1
