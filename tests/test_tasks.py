"""The background worker: huey on a SQLite file or Redis, the every-minute jobs, no writes on GET.

Most tests run tasks in huey's immediate mode (tests/conftest.py sets TASK_IMMEDIATE); the
consumer tests start the real `flask --app wsgi worker` in a subprocess on each backend.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import create_app, tasks
from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import ApiKey, AuditEvent
from portal.mail import saved_mails, send_mail
from tests import conftest
from tests.conftest import make_key, make_user
from tests.helpers import snapshot

ROOT = Path(__file__).resolve().parent.parent
FLASK = Path(sys.executable).parent / "flask"
WORKER_DEADLINE_SECONDS = 30


def expire(key: ApiKey, ago: timedelta = timedelta(minutes=5)) -> None:
    """Move a key's expiry into the past."""
    key.expires_at = utcnow() - ago
    db.session.commit()


def expiry_events(key_id: int) -> list[AuditEvent]:
    """The key's `expired` events, read fresh from the database."""
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.api_key_id == key_id, AuditEvent.action == "expired"
            )
        )
    )


def wait_for(condition: Callable[[], Any], what: str, process: subprocess.Popen[bytes]) -> Any:
    """Poll until `condition()` is truthy; fail with the worker's log if it never is."""
    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if result := condition():
            return result
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop_worker(process)
    pytest.fail(f"{what}: not within {WORKER_DEADLINE_SECONDS} s")


def stop_worker(process: subprocess.Popen[bytes]) -> int:
    """Ctrl-C (SIGINT), as a person at the terminal stops it; SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


# --- immediate mode and the queue configuration ---------------------------------------------


def test_tests_run_tasks_immediately(app: Flask) -> None:
    assert tasks.huey.immediate is True
    assert app.extensions["huey"] is tasks.huey


@pytest.mark.parametrize(
    ("url", "storage", "argument"),
    [
        ("sqlite:///{tmp}/queue/tasks.db", "SqliteStorage", "filename"),
        ("redis://cache.internal:6379/3", "RedisStorage", "url"),
    ],
)
def test_the_queue_url_picks_the_backend(
    tmp_path: Path, url: str, storage: str, argument: str
) -> None:
    storage_class, kwargs = tasks.storage_for(url.format(tmp=tmp_path))

    assert storage_class.__name__ == storage
    assert argument in kwargs
    if storage == "SqliteStorage":
        assert Path(kwargs["filename"]).parent.is_dir()  # the folder is made for the file


def test_the_every_minute_task_is_due_every_minute() -> None:
    start = datetime(2026, 12, 1, 22, 0, tzinfo=UTC).replace(tzinfo=None)
    minutes = [start + timedelta(minutes=offset) for offset in range(0, 24 * 60, 7)]

    for minute in minutes:
        due = [type(task) for task in tasks.huey.read_periodic(minute)]
        assert due == [tasks.every_minute.task_class], minute


def test_every_listed_job_resolves_to_a_function() -> None:
    assert tasks.EVERY_MINUTE_JOBS
    for path in tasks.EVERY_MINUTE_JOBS:
        assert callable(tasks.resolve_job(path)), path


def test_a_failing_job_does_not_stop_the_others(user: User) -> None:
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    expire(key)

    results = tasks.run_jobs(("portal.no_such_module:job", *tasks.EVERY_MINUTE_JOBS))

    assert results["portal.no_such_module:job"] is None
    assert results["portal.keys.service:record_all_lifecycle_events"] == 1
    assert len(expiry_events(key.id)) == 1


# --- key expiry: recorded by the periodic task, never by a page view ------------------------


def test_key_pages_write_nothing_and_the_periodic_task_records_the_expiry_once(
    signed_in: FlaskClient, user: User
) -> None:
    key, _ = make_key(user, "secret", label="Nightly sync", expires_at=utcnow() + timedelta(days=1))
    old, _ = make_key(user, "secret", label="Old storefront sync")
    keys.rotate_key(old, "1h", keys.Actor(name=user.email, user_id=user.id))
    expire(key)
    old.revoked_at = utcnow() - timedelta(seconds=1)  # its grace period just ended
    db.session.commit()
    before = snapshot()

    for url in ("/settings/api-keys", f"/settings/api-keys/{key.id}", "/settings/audit"):
        assert signed_in.get(url).status_code == 200, url
        assert signed_in.get(url, headers={"HX-Request": "true"}).status_code == 200, url

    assert snapshot() == before  # a GET wrote no audit event
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).logged_state == keys.STATE_ACTIVE

    tasks.every_minute()  # what the consumer's scheduler enqueues each minute
    tasks.every_minute()

    [expired] = expiry_events(key.id)
    assert expired.actor == "system"
    assert set(expired.details) == {"expired_at"}
    ended = db.session.scalars(
        select(AuditEvent).where(AuditEvent.api_key_id == old.id, AuditEvent.action == "revoked")
    ).all()
    assert [event.details for event in ended] == [{"reason": "grace period ended"}]
    page = signed_in.get("/settings/audit").get_data(as_text=True)
    assert "Nightly sync" in page and "grace period ended" in page


def test_the_periodic_task_covers_every_merchant(user: User, other_user: User) -> None:
    mine, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    theirs, _ = make_key(other_user, "publishable", expires_at=utcnow() + timedelta(days=1))
    for key in (mine, theirs):
        expire(key)

    tasks.every_minute()

    assert [event.merchant_id for event in expiry_events(mine.id)] == [user.merchant_id]
    assert [event.merchant_id for event in expiry_events(theirs.id)] == [other_user.merchant_id]


# --- the real consumer, on each backend ------------------------------------------------------


@pytest.fixture
def queue(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Callable[[str], Flask]]:
    """`queue(url)`: an app that enqueues on that real queue; immediate mode again afterwards."""

    made: list[Flask] = []

    def make(url: str) -> Flask:
        made.append(
            create_app(
                conftest.test_config(
                    database_url,
                    TASK_IMMEDIATE=False,
                    TASK_QUEUE_URL=url,
                    TASK_QUEUE_NAME=f"test-{secrets.token_hex(6)}",
                    MAIL_DIR=str(tmp_path / "never-written"),
                )
            )
        )
        return made[-1]

    yield make
    for queue_app in made:
        with queue_app.app_context():
            db.session.remove()
            db.engine.dispose()
    tasks.init_app(app)


def start_worker(queue_app: Flask, instance: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`flask --app wsgi worker` on the same database and queue as `queue_app`."""
    config = queue_app.config
    env = {
        **os.environ,
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": config["SECRET_KEY"],
        "API_KEY_PEPPER": config["API_KEY_PEPPER"].decode(),
        "PORTAL_INSTANCE_PATH": str(instance),
        "TASK_QUEUE_URL": config["TASK_QUEUE_URL"],
        "TASK_QUEUE_NAME": config["TASK_QUEUE_NAME"],
        "MAIL_URL": "console://",
        "PORTAL_URL": "http://portal.test",
    }
    env.pop("PORTAL_ENV", None)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(FLASK), "--app", "wsgi", "worker", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def run_through_the_consumer(queue_app: Flask, user: User, tmp_path: Path) -> str:
    """Enqueue a mail and the every-minute task, start the worker, see both done; its log."""
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    expire(key)
    store_name = "Quiet Corner Bookshop"  # in the body only: the log must not show it
    with queue_app.app_context():
        send_mail(
            ["owner@shop.test", "ops@shop.test"],
            "Welcome to the merchant key portal",
            "welcome",
            store_name=store_name,
            email="owner@shop.test",
        )
        tasks.every_minute()  # enqueued: nothing has run yet
    assert expiry_events(key.id) == []

    instance = tmp_path / "worker-instance"
    log_path = tmp_path / "worker.log"
    worker = start_worker(queue_app, instance, log_path)
    try:
        [mail] = wait_for(lambda: saved_mails(instance / "mail"), "the mail saved", worker)
        wait_for(lambda: expiry_events(key.id), "the expiry recorded", worker)
    finally:
        exit_code = stop_worker(worker)
    log = log_path.read_text(errors="replace")

    assert exit_code == 0, log
    assert mail["Subject"] == "Welcome to the merchant key portal"
    assert mail["To"] == "owner@shop.test, ops@shop.test"
    assert store_name in mail.get_body(("plain",)).get_content()
    assert store_name in mail.get_body(("html",)).get_content()
    assert len(expiry_events(key.id)) == 1
    assert "Mail to owner@shop.test, ops@shop.test: 'Welcome to the merchant key portal'" in log
    assert store_name not in log  # the console mailer logs who and what about, not the body
    return log


def test_the_worker_runs_queued_tasks_from_the_sqlite_file(
    queue: Callable[[str], Flask], user: User, tmp_path: Path
) -> None:
    queue_file = tmp_path / "queue" / "tasks.db"
    queue_app = queue(f"sqlite:///{queue_file}")

    log = run_through_the_consumer(queue_app, user, tmp_path)

    assert queue_file.exists()
    assert "on the sqlite queue" in log


@pytest.mark.redis
def test_the_worker_runs_queued_tasks_from_redis(
    queue: Callable[[str], Flask], user: User, tmp_path: Path
) -> None:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("needs TEST_REDIS_URL (Redis); .ci/run sets it")
    queue_app = queue(url)

    log = run_through_the_consumer(queue_app, user, tmp_path)

    assert "on the redis queue" in log
    assert len(tasks.huey) == 0  # the queue is empty again


def test_the_worker_refuses_immediate_mode(runner) -> None:  # noqa: ANN001
    result = runner.invoke(args=["worker"])

    assert result.exit_code != 0
    assert "TASK_IMMEDIATE" in result.output


def test_a_sign_up_enqueues_the_welcome_mail_instead_of_sending_it(
    queue: Callable[[str], Flask], tmp_path: Path
) -> None:
    queue_app = queue(f"sqlite:///{tmp_path / 'tasks.db'}")
    with queue_app.app_context():
        make_user("new@shop.test", "New Shop")

        assert tasks.huey.pending_count() == 1
        assert saved_mails(queue_app.config["MAIL_DIR"]) == []


# --- one run at a time, across every worker of the queue ------------------------------------


def test_a_run_in_progress_elsewhere_makes_this_minute_skip(user: User) -> None:
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    expire(key)
    assert tasks.huey.put_if_empty(tasks.EVERY_MINUTE_LOCK, time.time())  # another worker's run

    tasks.every_minute()

    assert expiry_events(key.id) == []
    tasks.huey.delete(tasks.EVERY_MINUTE_LOCK)  # that run ends
    tasks.every_minute()
    assert len(expiry_events(key.id)) == 1
    assert tasks.huey.get(tasks.EVERY_MINUTE_LOCK, peek=True) is None  # released after the run


def test_a_lock_left_by_a_killed_worker_is_taken_over(
    user: User, caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    expire(key)
    killed_at = time.time() - tasks.STALE_LOCK_SECONDS - 1
    assert tasks.huey.put_if_empty(tasks.EVERY_MINUTE_LOCK, killed_at)

    tasks.every_minute()

    assert len(expiry_events(key.id)) == 1
    assert "taken over as stale" in caplog.text
    assert tasks.huey.get(tasks.EVERY_MINUTE_LOCK, peek=True) is None
