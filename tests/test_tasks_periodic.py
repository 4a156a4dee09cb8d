"""Periodic tasks with a worker on every host: each minute's tasks are enqueued once per queue.

huey's scheduler runs in every consumer and enqueues the periodic tasks due each minute; with
one consumer per host that is once per host. `PortalHuey.read_periodic` makes the consumers of
one queue claim the minute first. Here two huey instances on one storage play two hosts' workers,
and huey's own Scheduler does the enqueueing. The test across real hosts is
tests/scale/test_multihost.py.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from huey import crontab
from huey.consumer import Scheduler
from huey.storage import RedisStorage, SqliteStorage

from portal import tasks

TWELVE_O_FIVE = datetime(2026, 12, 5, 12, 5, 17)
TWELVE_O_SIX = datetime(2026, 12, 5, 12, 6, 2)


def make_queue(
    storage: str, tmp_path: Path, name: str, made: list[tasks.PortalHuey]
) -> Callable[[], tasks.PortalHuey]:
    """A factory of huey instances on one shared queue, each with an every-minute task."""

    def one_worker() -> tasks.PortalHuey:
        if storage == "sqlite":
            queue = tasks.PortalHuey(
                name, utc=True, storage_class=SqliteStorage, filename=str(tmp_path / "q.db")
            )
        else:
            queue = tasks.PortalHuey(
                name, utc=True, storage_class=RedisStorage, url=os.environ["TEST_REDIS_URL"]
            )

        @queue.periodic_task(crontab())
        def tick() -> None:
            """Enqueued every minute."""

        made.append(queue)
        return queue

    return one_worker


@pytest.fixture(params=["sqlite", "redis"])
def workers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], tasks.PortalHuey]]:
    """Each call is one more worker on the same queue (SQLite file, or the test Redis)."""
    if request.param == "redis" and not os.environ.get("TEST_REDIS_URL"):
        pytest.skip("needs TEST_REDIS_URL (Redis); .ci/run sets it")
    name = f"periodic-{secrets.token_hex(4)}"
    made: list[tasks.PortalHuey] = []
    factory = make_queue(request.param, tmp_path, name, made)
    yield factory
    queue = factory()
    queue.flush()
    for each in made:
        if isinstance(each.storage, RedisStorage):
            for key in each.storage.conn.scan_iter(f"{name}.periodic.*"):
                each.storage.conn.delete(key)
            each.storage.conn.connection_pool.disconnect()
        else:
            each.storage.close()


def scheduler(queue: tasks.PortalHuey) -> Scheduler:
    """huey's own scheduler for one consumer (it enqueues what read_periodic returns)."""
    return Scheduler(queue, threading.Event(), interval=1, periodic=True)


def test_two_workers_enqueue_each_minutes_periodic_task_once(
    workers: Callable[[], tasks.PortalHuey],
) -> None:
    host_a, host_b = workers(), workers()

    scheduler(host_a).enqueue_periodic_tasks(TWELVE_O_FIVE)
    scheduler(host_b).enqueue_periodic_tasks(TWELVE_O_FIVE.replace(second=48))

    assert host_a.pending_count() == 1  # one queue: both see the same pending task

    scheduler(host_b).enqueue_periodic_tasks(TWELVE_O_SIX)  # the next minute: B is first
    scheduler(host_a).enqueue_periodic_tasks(TWELVE_O_SIX)

    assert host_a.pending_count() == 2


def test_the_claim_of_a_minute_is_taken_once(workers: Callable[[], tasks.PortalHuey]) -> None:
    queue = workers()

    assert tasks.claim_periodic_minute(queue, "2026-12-05T12:05") is True
    assert tasks.claim_periodic_minute(workers(), "2026-12-05T12:05") is False
    assert tasks.claim_periodic_minute(queue, "2026-12-05T12:06") is True


def test_the_app_queue_is_a_portal_huey() -> None:
    assert isinstance(tasks.huey, tasks.PortalHuey)
