"""Page benchmark of usage: the key page must render in under 200 ms with a year of data.

Builds a fresh, migrated database (SQLite by default; PostgreSQL with --database-url pointing at
an empty scratch database), one merchant with the key under test, and a year of its usage:

- 8,760 hourly rollups (one per hour, ending now) summing to about 1,000,000 calls, with outcomes
  and latency histograms;
- daily endpoint rows for 365 days x 8 routes;
- its 50 most recent calls.

Then it times, through Flask's test client with a signed-in session, the key page
(`GET /settings/api-keys/<id>`), the usage partial htmx polls (`GET .../usage` with
`HX-Request`) and the overview (`GET /settings/usage`), N runs each after a warm-up, reporting the
median and p95 in ms. Phase 2 adds 1,000,000 rows to `usage_calls` (1,000 keys x 1,000 calls,
ids interleaved as concurrent flushes leave them, never pruned) and times again: the page stays
fast without the 50-per-key bound because it reads through the (api_key_id, id) index; phase 3
drops that index and times again, for comparison.

    .venv/bin/python bench/usage_page.py                       # SQLite in a temporary directory
    .venv/bin/python bench/usage_page.py --database-url postgresql://postgres@127.0.0.1/scratch
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Secrets for development are generated into the instance folder: keep them out of the repository.
os.environ["PORTAL_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="usage-bench-instance-")
os.environ.pop("PORTAL_ENV", None)

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from portal import create_app  # noqa: E402
from portal.accounts import service as accounts  # noqa: E402
from portal.database import utcnow  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.keys import service as keys  # noqa: E402
from portal.keys.models import ApiKey  # noqa: E402
from portal.usage.models import (  # noqa: E402
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    OUTCOMES,
    UsageCall,
    UsageEndpointDaily,
    UsageHourly,
)

TARGET_MS = 200.0
HOURS = 365 * 24
TARGET_CALLS = 1_000_000
CHUNK = 10_000
# Share of each outcome, and of each latency bucket (the last one: slower than 2.5 s).
OUTCOME_SHARES = {
    "ok": 0.955,
    "client_error": 0.025,
    "server_error": 0.002,
    "rate_limited": 0.01,
    "origin_denied": 0.004,
    "scope_denied": 0.003,
    "ip_denied": 0.001,
}
LATENCY_SHARES = (0.05, 0.15, 0.30, 0.25, 0.12, 0.06, 0.035, 0.02, 0.01, 0.004, 0.0008, 0.0002)
ROUTES = [
    ("GET", "/api/v1/catalog/products", 0.40),
    ("GET", "/api/v1/catalog/products/{product_id}", 0.25),
    ("POST", "/api/v1/carts", 0.10),
    ("POST", "/api/v1/carts/{cart_id}/items", 0.10),
    ("GET", "/api/v1/carts/{cart_id}", 0.08),
    ("POST", "/api/v1/checkouts", 0.04),
    ("GET", "/api/v1/key", 0.02),
    ("GET", "/api/v1/catalog/markets", 0.01),
]


def split(total: int, shares: Iterator[float] | list[float] | tuple[float, ...]) -> list[int]:
    """Split an integer by shares; the rounding goes to the first (largest) part."""
    parts = [int(total * share) for share in shares]
    parts[0] += total - sum(parts)
    return parts


def chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    """Rows in lists of `size`."""
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def bulk_insert(table: Any, rows: Iterator[dict[str, Any]]) -> int:
    """Insert rows with Core executemany in chunks, one commit at the end; returns how many."""
    count = 0
    for batch in chunks(rows):
        db.session.execute(insert(table), batch)
        count += len(batch)
    db.session.commit()
    return count


def hourly_calls(rng: random.Random) -> list[int]:
    """Calls per hour for a year, oldest first: a daily and weekly rhythm plus noise, ~1M in all."""
    weights = []
    for hour in range(HOURS):
        daily = 1 + 0.8 * math.sin((hour % 24 - 9) / 24 * 2 * math.pi)
        weekly = 0.7 if (hour // 24) % 7 in (5, 6) else 1.0
        weights.append(max(0.05, daily * weekly * rng.uniform(0.8, 1.2)))
    scale = TARGET_CALLS / sum(weights)
    return [round(weight * scale) for weight in weights]


def seed_year(app: Flask, key: ApiKey, rng: random.Random) -> dict[str, int]:
    """A year of hourly rollups and daily endpoint rows for `key`, and its last 50 calls."""
    last_hour = utcnow().replace(minute=0, second=0, microsecond=0)
    first_hour = last_hour - timedelta(hours=HOURS - 1)
    calls_per_hour = hourly_calls(rng)
    midpoints = [bound * 0.6 for bound in LATENCY_BOUNDS_MS] + [4000.0]

    def hourly_rows() -> Iterator[dict[str, Any]]:
        for index, calls in enumerate(calls_per_hour):
            histogram = split(calls, LATENCY_SHARES)
            yield {
                "api_key_id": key.id,
                "merchant_id": key.merchant_id,
                "hour": first_hour + timedelta(hours=index),
                "calls": calls,
                **dict(
                    zip(OUTCOMES, split(calls, [OUTCOME_SHARES[o] for o in OUTCOMES]), strict=True)
                ),
                "latency_sum_ms": sum(n * mid for n, mid in zip(histogram, midpoints, strict=True)),
                **dict(zip(LATENCY_COLUMNS, histogram, strict=True)),
            }

    per_day: dict[Any, int] = {}
    for index, calls in enumerate(calls_per_hour):
        day = (first_hour + timedelta(hours=index)).date()
        per_day[day] = per_day.get(day, 0) + calls

    def endpoint_rows() -> Iterator[dict[str, Any]]:
        for day, calls in per_day.items():
            for (method, route, _), route_calls in zip(
                ROUTES, split(calls, [share for *_, share in ROUTES]), strict=True
            ):
                yield {
                    "api_key_id": key.id,
                    "merchant_id": key.merchant_id,
                    "day": day,
                    "method": method,
                    "route": route,
                    "calls": route_calls,
                    "errors": route_calls // 25,
                }

    hourly = bulk_insert(UsageHourly.__table__, hourly_rows())
    endpoints = bulk_insert(UsageEndpointDaily.__table__, endpoint_rows())
    recent = bulk_insert(UsageCall.__table__, call_rows([key], 50, utcnow(), rng))
    return {
        "hourly_rows": hourly,
        "calls_in_rollups": sum(calls_per_hour),
        "endpoint_rows": endpoints,
        "recent_calls": recent,
    }


def call_rows(
    api_keys: list[ApiKey], per_key: int, end: datetime, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """`per_key` calls of every key, interleaved (round-robin), oldest first."""
    ids = [(key.id, key.merchant_id) for key in api_keys]
    total = per_key * len(ids)
    for index in range(total):
        key_id, merchant_id = ids[index % len(ids)]
        method, route, _ = ROUTES[index % len(ROUTES)]
        denied = index % 40 == 0
        yield {
            "api_key_id": key_id,
            "merchant_id": merchant_id,
            "at": end - timedelta(seconds=(total - index) * 0.03),
            "method": method,
            "route": route,
            "status": 403 if denied else 200,
            "latency_ms": round(rng.uniform(1, 40), 2),
            "origin": "https://shop.example" if index % 3 == 0 else None,
            "outcome": "origin_denied" if denied else "ok",
        }


def more_keys(key: ApiKey, count: int) -> list[ApiKey]:
    """`count` more keys of the same merchant, inserted in bulk (copies of `key`'s settings)."""
    columns = {
        column.name: getattr(key, column.key)
        for column in ApiKey.__table__.columns
        if column.name not in ("id", "key_hash", "last4", "publishable_token")
    }
    rows = (
        {
            **columns,
            "key_hash": f"{number:064x}",
            "last4": f"{number % 10_000:04d}",
            "label": f"bulk {number}",
        }
        for number in range(1, count + 1)
    )
    bulk_insert(ApiKey.__table__, rows)
    return list(db.session.scalars(select(ApiKey).where(ApiKey.label.like("bulk %"))))


def timed(run: Callable[[], Any], runs: int, warmup: int = 3) -> dict[str, float]:
    """Median, p95 and max of `runs` timings in ms, after `warmup` untimed runs."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p95": samples[max(0, math.ceil(0.95 * len(samples)) - 1)],
        "max": samples[-1],
    }


def page_timings(
    client: FlaskClient, key_id: int, quiet_key_id: int, runs: int
) -> dict[str, dict[str, float]]:
    """Time the key page, its usage partial, the page of a key never called, and the overview."""
    targets = {
        "key page": (f"/settings/api-keys/{key_id}", {}),
        "usage partial (htmx)": (f"/settings/api-keys/{key_id}/usage", {"HX-Request": "true"}),
        "key page, key never called": (f"/settings/api-keys/{quiet_key_id}", {}),
        "overview": ("/settings/usage", {}),
    }
    results = {}
    for name, (url, headers) in targets.items():

        def run(url: str = url, headers: dict[str, str] = headers) -> None:
            response = client.get(url, headers=headers)
            if response.status_code != 200 or b"usage" not in response.data:
                raise SystemExit(f"{url} answered {response.status_code}")
            db.session.remove()  # every request starts with an empty session, as in production

        results[name] = timed(run, runs)
    return results


def machine() -> dict[str, str]:
    """Where the benchmark ran."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    import sqlite3

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
    }


def report(title: str, results: dict[str, dict[str, float]]) -> bool:
    """Print a results table; True when every page's p95 is under the target."""
    print(f"\n{title}")
    print("| page | median ms | p95 ms | max ms | p95 < 200 ms |")
    print("|---|---:|---:|---:|---|")
    passed = True
    for name, figures in results.items():
        ok = figures["p95"] < TARGET_MS
        passed &= ok
        print(
            f"| {name} | {figures['median']:.1f} | {figures['p95']:.1f} | {figures['max']:.1f} | "
            f"{'yes' if ok else 'NO'} |"
        )
    return passed


def main() -> int:
    """Build the data, time the pages, print the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", help="an EMPTY database (default: a new SQLite file)")
    parser.add_argument("--runs", type=int, default=50, help="timed requests per page (default 50)")
    parser.add_argument(
        "--call-rows", type=int, default=1_000_000, help="usage_calls rows in phase 2"
    )
    parser.add_argument("--call-keys", type=int, default=1_000, help="keys sharing those rows")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--no-index-check",
        dest="index_check",
        action="store_false",
        help="skip phase 3 (the pages timed again without the usage_calls index)",
    )
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="usage-bench-")
    url = args.database_url or f"sqlite:///{scratch}/usage.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "USAGE_FLUSH_SECONDS": 0})
    rng = random.Random(args.seed)
    for name, value in machine().items():
        print(f"{name}: {value}")
    print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}")

    with app.app_context():
        started = time.perf_counter()
        upgrade()
        if db.session.scalar(select(func.count()).select_from(ApiKey)):
            raise SystemExit("The database is not empty; give an empty scratch database.")
        user = accounts.register(
            accounts.NewAccount("bench@usage.test", "correct horse battery", "Usage Bench")
        )
        key, _ = keys.create_key(
            user.merchant_id,
            "publishable",
            keys.KeySettings(label="Storefront"),
            keys.Actor(name=user.email, user_id=user.id),
        )
        quiet_key, _ = keys.create_key(
            user.merchant_id,
            "secret",
            keys.KeySettings(label="Quiet"),
            keys.Actor(name=user.email, user_id=user.id),
        )
        key_id, quiet_key_id = key.id, quiet_key.id
        user_id, epoch = user.id, user.session_epoch
        seeded = seed_year(app, key, rng)
        print(
            f"seeded {seeded['hourly_rows']:,} hourly rows ({seeded['calls_in_rollups']:,} calls), "
            f"{seeded['endpoint_rows']:,} daily endpoint rows, "
            f"{seeded['recent_calls']} recent calls in {time.perf_counter() - started:.1f} s"
        )
        db.session.remove()

        client = app.test_client()
        with client.session_transaction() as session:
            session["user_id"] = user_id
            session["epoch"] = epoch

        passed = report(
            f"Phase 1: a year of rollups, 50 recent calls (N={args.runs})",
            page_timings(client, key_id, quiet_key_id, args.runs),
        )

        started = time.perf_counter()
        key = db.session.get(ApiKey, key_id)
        per_key = args.call_rows // args.call_keys
        api_keys = [key, *more_keys(key, args.call_keys - 1)]
        added = bulk_insert(UsageCall.__table__, call_rows(api_keys, per_key, utcnow(), rng))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
        total_calls = db.session.scalar(select(func.count()).select_from(UsageCall))
        print(
            f"\nadded {added:,} usage_calls rows for {len(api_keys):,} keys "
            f"({total_calls:,} in the table) in {time.perf_counter() - started:.1f} s"
        )
        db.session.remove()
        passed &= report(
            f"Phase 2: + {added:,} rows in usage_calls, never pruned (N={args.runs})",
            page_timings(client, key_id, quiet_key_id, args.runs),
        )
        db.session.remove()
        if args.index_check:
            # The counterfactual: without the (api_key_id, id) index the recent calls of a key
            # are found by scanning the whole table. Reported, not part of PASS/FAIL.
            db.session.execute(db.text("DROP INDEX ix_usage_calls_key_id"))
            db.session.commit()
            db.session.remove()
            report(
                f"Phase 3 (for comparison): the same without ix_usage_calls_key_id (N={args.runs})",
                page_timings(client, key_id, quiet_key_id, args.runs),
            )
        db.session.remove()
        db.engine.dispose()
    print(f"\n{'PASS' if passed else 'FAIL'}: target p95 < {TARGET_MS:.0f} ms (phases 1 and 2)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
