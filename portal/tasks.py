"""The background worker: the huey instance, the task decorator and the every-minute jobs.

The web process only enqueues; `flask --app wsgi worker` runs the consumer. Tasks are small
functions taking ids (or an already rendered message), each run inside an app context.

Every host runs a worker on the same queue, and each consumer's scheduler looks for due
periodic tasks once a minute: huey alone would enqueue them once per consumer. So a consumer
first claims the minute in the queue's storage (`claim_periodic_minute`); the one that gets the
claim enqueues that minute's periodic tasks, every other consumer skips them.

A job that must run every minute is one line in EVERY_MINUTE_JOBS ("module:function", no
arguments, idempotent: it may run late or, rarely, twice). For example
    "portal.store.checkouts:expire_due_checkouts",
"""

from __future__ import annotations

import datetime
import functools
import importlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from huey import Huey, crontab
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

EVERY_MINUTE_JOBS: tuple[str, ...] = (
    "portal.keys.service:record_all_lifecycle_events",
    "portal.keys.notices:send_expiry_notices",
    "portal.store.checkouts:expire_due_checkouts",
    "portal.webhooks.delivery:pump",
)

# A claim outlives its minute by far: hosts whose clocks differ by less than this still agree.
PERIODIC_CLAIM_SECONDS = 3600


class PortalHuey(Huey):
    """huey whose consumers share the periodic schedule: one enqueues each minute's tasks."""

    def read_periodic(self, timestamp: datetime.datetime | None) -> list[Any]:
        """The periodic tasks due at `timestamp`, if this consumer is the first to claim its
        minute; none if another consumer of the queue already did."""
        due = super().read_periodic(timestamp)
        if not due:
            return due
        minute = (timestamp or self._get_timestamp()).strftime("%Y-%m-%dT%H:%M")
        if claim_periodic_minute(self, minute):
            logger.info("Periodic tasks of %s: enqueued by this worker", minute)
            return due
        logger.info("Periodic tasks of %s: already enqueued by another worker", minute)
        return []


def claim_periodic_minute(queue: Huey, minute: str) -> bool:
    """Claim `minute` ("YYYY-MM-DDTHH:MM") for this consumer; False if another one has it.

    On Redis, one SET NX with an expiry. On the other storages (SQLite: one host) huey's atomic
    put_if_empty, and the minute before is dropped, as no consumer reads it any more.
    """
    key = f"{queue.name}.periodic.{minute}"
    storage = queue.storage
    if isinstance(storage, RedisStorage):
        return bool(storage.conn.set(key, b"1", nx=True, ex=PERIODIC_CLAIM_SECONDS))
    if not queue.put_if_empty(key, "1"):
        return False
    previous = datetime.datetime.strptime(minute, "%Y-%m-%dT%H:%M") - datetime.timedelta(minutes=1)
    queue.delete(f"{queue.name}.periodic.{previous:%Y-%m-%dT%H:%M}")
    return True


# Bound to a real queue by init_app(); until then nothing can be enqueued anywhere durable.
huey = PortalHuey("portal", results=False, utc=True, storage_class=MemoryStorage)
_bound: dict[str, Flask] = {}


def storage_for(url: str) -> tuple[type, dict[str, Any]]:
    """The huey storage class and its arguments for a TASK_QUEUE_URL."""
    if url.startswith("sqlite:///"):
        filename = Path(url.removeprefix("sqlite:///"))
        filename.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStorage, {"filename": str(filename)}
    if url.startswith(("redis://", "rediss://")):
        return RedisStorage, {"url": url}
    raise ValueError(f"unsupported TASK_QUEUE_URL {url!r}")


def init_app(app: Flask) -> None:
    """Point the huey instance at the app's queue (or immediate mode) and bind the app."""
    storage_class, storage_kwargs = storage_for(app.config["TASK_QUEUE_URL"])
    huey.name = app.config["TASK_QUEUE_NAME"]
    huey.storage_class = storage_class
    huey.storage_kwargs = storage_kwargs
    huey.immediate = bool(app.config["TASK_IMMEDIATE"])
    huey.storage = huey.create_storage()
    _bound["app"] = app
    app.extensions["huey"] = huey


def _app() -> Flask:
    """The app a task runs in: the current one (immediate mode) or the one init_app bound."""
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return _bound["app"]
    except KeyError:
        raise RuntimeError("portal.tasks.init_app(app) was never called") from None


def task(**options: Any) -> Callable[[Callable[P, R]], Any]:
    """Declare a background task: huey's `task`, the function run inside a fresh app context.

    Calling the task enqueues it; `task.call_local(...)` runs it here and now.
    """

    def decorator(func: Callable[P, R]) -> Any:
        @functools.wraps(func)
        def in_app_context(*args: P.args, **kwargs: P.kwargs) -> R:
            with _app().app_context():
                return func(*args, **kwargs)

        return huey.task(**options)(in_app_context)

    return decorator


def resolve_job(path: str) -> Callable[[], Any]:
    """The function a "module:function" line of EVERY_MINUTE_JOBS names."""
    module_name, _, function_name = path.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_jobs(paths: tuple[str, ...] = EVERY_MINUTE_JOBS) -> dict[str, Any]:
    """Run each job in its own app context; one failing job does not stop the others."""
    results: dict[str, Any] = {}
    app = _app()
    for path in paths:
        with app.app_context():
            try:
                results[path] = resolve_job(path)()
            except Exception:
                logger.exception("Every-minute job %s failed", path)
                from portal.extensions import db

                db.session.rollback()
                results[path] = None
    return results


EVERY_MINUTE_LOCK = "portal.tasks.every_minute.lock"
# A run holding the lock longer than this died without releasing it (SIGKILL, OOM, a host lost).
STALE_LOCK_SECONDS = 600


def _take_every_minute_lock(now: float) -> bool:
    """Take the queue-wide lock of the every-minute jobs; a stale one is taken over."""
    if huey.put_if_empty(EVERY_MINUTE_LOCK, now):
        return True
    held_since = huey.get(EVERY_MINUTE_LOCK, peek=True)
    if held_since is not None and now - held_since > STALE_LOCK_SECONDS:
        logger.warning("Every-minute lock held since %s: taken over as stale", held_since)
        huey.delete(EVERY_MINUTE_LOCK)
        return huey.put_if_empty(EVERY_MINUTE_LOCK, now)
    return False


@huey.periodic_task(crontab())
def every_minute() -> None:
    """The periodic task: every EVERY_MINUTE_JOBS line, once a minute, one run at a time.

    One worker of the queue enqueues it each minute (PortalHuey.read_periodic); the queue-wide
    lock keeps a run that lasts past its minute from overlapping the next one.
    """
    if not _take_every_minute_lock(time.time()):
        logger.info("Every-minute jobs still running elsewhere: this run is skipped")
        return
    try:
        run_jobs()
        logger.info("Every-minute jobs ran")
    finally:
        huey.delete(EVERY_MINUTE_LOCK)
