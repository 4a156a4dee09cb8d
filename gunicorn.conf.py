"""gunicorn settings for production-style serving: `make serve`, or `gunicorn -c gunicorn.conf.py`.

Environment: HOST and PORT (default 127.0.0.1:8000), WEB_CONCURRENCY (workers; default two per
CPU plus one), GUNICORN_THREADS (threads per worker; 1 = the sync worker), GUNICORN_TIMEOUT,
GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE, GUNICORN_ACCESS_LOG ("-" for stderr, empty for none),
GUNICORN_LOG_LEVEL, FORWARDED_ALLOW_IPS, GUNICORN_CONTROL_SOCKET.

Several workers count rate limits together only through Redis: more than one worker with
RATELIMIT_STORAGE_URI=memory:// is refused in production (a warning in development).

Background work (mail, expiries, every periodic job) runs beside gunicorn, never in it: run
`flask --app wsgi worker` on each host (one per host is enough; `--workers N` threads each),
under the same supervisor as gunicorn (a systemd unit, a container of its own). With the data on
PostgreSQL every host shares TASK_QUEUE_URL=redis://...; the default SQLite queue is for one host.
Each minute's periodic jobs are enqueued by one worker of the queue (the first to claim the
minute; portal/tasks.py), and a lock keeps a long run from overlapping the next.
"""

from __future__ import annotations

import os
from typing import Any


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def default_workers() -> int:
    """Two workers per CPU plus one: a worker waits on the database or Redis part of the time."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 2 * (cpus or 1) + 1


wsgi_app = "wsgi:app"
bind = [f"{os.environ.get('HOST') or '127.0.0.1'}:{_int('PORT', 8000)}"]
workers = _int("WEB_CONCURRENCY", default_workers())
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
# Each worker imports the app after the fork: no database connection or limiter storage
# connection is ever shared between processes.
preload_app = False

# A request that takes longer than this is stuck: the master replaces the worker.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM (deploys, `make serve` stopped) a worker finishes its requests, then its
# `worker_exit` below writes the buffered usage; past this it is killed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Access log: who, when, method, path without the query string, status, size, duration and the
# worker's pid.
# Never a header (keys travel in Authorization / X-API-Key, referrers carry URLs) and never the
# query string, where a careless client might put a key.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms pid=%(p)s'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "merchant-key-portal"
# gunicornc's control socket sits at one path per user, so two servers on a machine would fight
# over it: off unless GUNICORN_CONTROL_SOCKET names a path for this server.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True


def worker_exit(server: Any, worker: Any) -> None:
    """Write the worker's buffered usage before it goes (graceful stop, restart, max-requests)."""
    if worker.pid != os.getpid():
        return  # the master, reaping a worker that is already gone: nothing to flush here
    app = getattr(worker, "wsgi", None)
    recorder = getattr(app, "extensions", {}).get("usage_recorder")
    if recorder is None:
        return
    recorder.stop()
    server.log.info("Worker %s flushed its usage buffer", worker.pid)


def on_starting(server: Any) -> None:
    """Refuse, before any worker boots, a set-up that would go wrong silently.

    The settings are the app's own (portal.config), read once here so that a mistake stops the
    master with one clear line instead of every worker failing to boot.
    """
    from pathlib import Path

    from portal.config import check_serving_processes, load_config

    instance = Path(os.environ.get("PORTAL_INSTANCE_PATH") or Path(__file__).parent / "instance")
    warning = check_serving_processes(server.cfg.workers, load_config(instance))
    if warning:
        server.log.warning("%s", warning)
