"""Per-request cost through the WSGI callable: bare Flask (the floor) against this project.

One process, no server and no network client: each request is one call of the app's WSGI
callable with a prepared environ. Apps are measured in interleaved rounds (A, B, C, A, B, C...),
each round a batch of requests; the table shows the median per-request time of the rounds.
Setup: one merchant, 10 publishable keys (picked in turn), 20 published products.

    .venv/bin/python bench/wsgi.py [--rounds 15] [--batch 300]
    TEST_DATABASE_URL=postgresql://... TEST_REDIS_URL=redis://... .venv/bin/python bench/wsgi.py

With a PostgreSQL URL (--database-url or TEST_DATABASE_URL) and a Redis URL (--redis-url or
TEST_REDIS_URL) the PostgreSQL + Redis row is measured in a scratch database (created and
dropped here) and a scratch Redis key prefix (deleted at the end). The Django REST framework
rows of issue 14 need a package set this project does not ship; they are not measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PORTAL_INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-wsgi-instance-"))

PATHS = {
    "healthz": "/healthz",
    "key": "/api/v1/key",
    "catalog": "/api/v1/catalog/products",
}
KEY_COUNT = 10
PRODUCT_COUNT = 20


def bare_flask() -> Any:
    """The floor: a Flask app answering JSON, nothing else."""
    from flask import Flask, jsonify

    app = Flask("bare")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    return app


def environ_for(path: str, token: str | None) -> dict[str, Any]:
    """A GET environ as a WSGI server would pass it."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return environ


class Target:
    """One app and one path: a callable doing `batch` requests, checking each status."""

    def __init__(self, app: Any, path: str, tokens: list[str] | None) -> None:
        self.app = app
        self.environs = [environ_for(path, token) for token in (tokens or [None])]
        self.statuses: list[str] = []

    clock = staticmethod(time.perf_counter)

    def run(self, batch: int) -> float:
        """Seconds per request over `batch` requests (by `Target.clock`)."""
        wsgi = self.app.wsgi_app if hasattr(self.app, "wsgi_app") else self.app
        environs = self.environs
        count = len(environs)
        status: list[str] = []

        def start_response(code: str, headers: Any, exc_info: Any = None) -> None:
            status.append(code)

        clock = self.clock
        started = clock()
        for index in range(batch):
            environ = dict(environs[index % count])
            body = wsgi(environ, start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        elapsed = clock() - started
        bad = [code for code in status if not code.startswith("200")]
        if bad:
            raise SystemExit(f"{self.environs[0]['PATH_INFO']} answered {bad[0]}")
        return elapsed / batch


@contextlib.contextmanager
def portal_app(database_url: str, storage_uri: str, prefix: str) -> Iterator[tuple[Any, list]]:
    """This project, migrated and seeded; yields (app, tokens)."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.accounts import service as accounts
    from portal.extensions import db
    from portal.keys import service as keys
    from portal.store import service as store

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_STORAGE_URI": storage_uri,
            "RATELIMIT_KEY_PREFIX": prefix,
            "TASK_IMMEDIATE": True,
            "MAIL_URL": "console://",
            # Batches are flushed by the recorder's thread, as when served.
            "USAGE_FLUSH_SECONDS": 2.0,
        }
    )
    with app.app_context():
        upgrade()
        user = accounts.register(
            accounts.NewAccount(f"bench-{uuid.uuid4().hex[:8]}@shop.test", "x" * 16, "Bench")
        )
        for number in range(PRODUCT_COUNT):
            store.create_product(
                store.Tenant(user.merchant_id),
                {
                    "name": f"Product number {number} with a realistic, longer name",
                    "description": "Heavy cotton canvas, natural. " * 3,
                    "price": 1000 + number,
                    "currency": "USD",
                    "inventory": 10 + number,
                    "published": True,
                },
            )
        actor = keys.Actor(name=user.email, user_id=user.id)
        tokens = [
            keys.create_key(
                user.merchant_id,
                "publishable",
                keys.KeySettings(label=f"bench {number}", rate_limit=10_000),
                actor,
            )[1]
            for number in range(KEY_COUNT)
        ]
        db.session.remove()
    try:
        yield app, tokens
    finally:
        app.extensions["usage_recorder"].stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@contextlib.contextmanager
def scratch_postgres(base_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database next to `base_url`'s, dropped at the end."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"bench_wsgi_{os.getpid()}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clear_redis(redis_url: str, prefix: str) -> None:
    """Delete the counters the run left under `prefix`."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter(f"{prefix}*"):
        client.delete(name)


def interleaved(targets: dict[str, Callable[[int], float]], rounds: int, batch: int) -> dict:
    """Median seconds per request of each target over interleaved rounds."""
    for run in targets.values():  # warm-up: connections, compiled statements, caches
        run(max(20, batch // 10))
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, run in targets.items():
            samples[name].append(run(batch))
    return {name: statistics.median(values) for name, values in samples.items()}


def load() -> str:
    """The load average while the bench ran, to judge the numbers."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table of issue 14."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=200, help="requests per round and target")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL"))
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (default); cpu: this process's CPU time, which other processes "
        "on a busy machine do not inflate as much, but which leaves out the time spent waiting "
        "for Redis and PostgreSQL",
    )
    args = parser.parse_args(argv)
    if args.clock == "cpu":
        Target.clock = staticmethod(time.process_time)

    import logging

    logging.disable(logging.WARNING)  # the usage recorder's and limiter's notices
    rows: dict[str, dict[str, float]] = {}
    prefix = f"bench-wsgi-{os.getpid()}"
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        targets: dict[str, Callable[[int], float]] = {}
        bare = bare_flask()
        targets["bare Flask JSON (the floor)|healthz"] = Target(bare, "/healthz", None).run
        apps = {
            "this project, SQLite + memory": stack.enter_context(
                portal_app(f"sqlite:///{workdir / 'bench.db'}", "memory://", prefix)
            )
        }
        if args.database_url and args.database_url.startswith("postgresql") and args.redis_url:
            stack.callback(clear_redis, args.redis_url, prefix)
            database = stack.enter_context(scratch_postgres(args.database_url))
            apps["this project, PostgreSQL + Redis"] = stack.enter_context(
                portal_app(database, args.redis_url, prefix)
            )
        for label, (app, tokens) in apps.items():
            for name, path in PATHS.items():
                tokens_for = None if name == "healthz" else tokens
                targets[f"{label}|{name}"] = Target(app, path, tokens_for).run
        before = load()
        results = interleaved(targets, args.rounds, args.batch)
        after = load()
    for name, seconds in results.items():
        label, column = name.split("|")
        rows.setdefault(label, {})[column] = seconds * 1e6
    floor = rows["bare Flask JSON (the floor)"]["healthz"]
    clock = "CPU time of this process" if args.clock == "cpu" else "elapsed time"
    print(
        f"{args.rounds} interleaved rounds of {args.batch} requests; medians per request ({clock})."
    )
    print(f"Machine: before {before}; after {after}.")
    print()
    print("| | `/healthz` | `/api/v1/key` | `/api/v1/catalog/products` |")
    print("|---|---:|---:|---:|")
    for label, columns in rows.items():
        cells = []
        for column in PATHS:
            value = columns.get(column)
            if value is None:
                cells.append("")
            elif value < 10:  # answered in front of Flask: a microsecond or less
                cells.append(f"{value:.1f} µs ({value / floor:.2f}×)")
            else:
                cells.append(f"{value:,.0f} µs ({value / floor:.1f}×)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("Ratios are to the bare Flask floor measured in the same run.")
    print("Django REST framework rows: not measured (its package set is not shipped here).")


if __name__ == "__main__":
    main()
