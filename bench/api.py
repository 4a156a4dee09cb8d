"""Load benchmark of the API gate: gunicorn (gunicorn.conf.py) on 127.0.0.1, driven by wrk.

Issue 14's targets 5 and 6, for SQLite and for PostgreSQL + Redis, in one run:

- target 5: a bare Flask app answering JSON (`bare_app` below) and this project, each served by
  gunicorn with gunicorn.conf.py, both running; wrk rounds alternate between the bare app's
  `/api/v1/key` and the project's `/api/v1/key`, `/healthz` and `/api/v1/catalog/products`;
- target 6: two servers of this project, both running: one on a database with 1,000 keys and
  20 products, one with 1,000,000 keys and 100,000 products (filled with bulk SQL); rounds
  alternate between them for `/api/v1/key` and `/api/v1/catalog/products`.

    .venv/bin/python bench/api.py --help

Everything runs on this machine: servers bind 127.0.0.1 only, every wrk run is bounded in
time, and the scratch PostgreSQL databases and Redis keys are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENDPOINTS = {
    "healthz": ("/healthz", False),
    "key": ("/api/v1/key", True),
    "catalog": ("/api/v1/catalog/products", True),
}
WRK_SCRIPT = r"""
-- One Lua state per wrk thread: pick a random key of the file for every request.
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
local path = os.getenv("BENCH_PATH")
local auth = os.getenv("BENCH_AUTH") == "1"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
  if auth then
    local headers = {["Authorization"] = "Bearer " .. keys[math.random(#keys)]}
    return wrk.format("GET", path, headers)
  end
  return wrk.format("GET", path)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


# ---------------------------------------------------------------------------------------------
# The machine, wrk, free ports


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, OS and Python of this machine."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian with apt-get when missing."""
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk is missing: installing it from Debian (apt-get install wrk)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk could not be installed; run `apt-get install wrk` as root.")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# A backend: the environment of one database + limiter storage


@dataclass
class Backend:
    """Where the server keeps its data and counters for one part of the run."""

    name: str
    database_url: str
    storage_uri: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    cleanup: list[Any] = field(default_factory=list)

    def close(self) -> None:
        """Drop what the run created (scratch database, Redis counters)."""
        for action in reversed(self.cleanup):
            try:
                action()
            except Exception as error:  # report, and keep cleaning up
                print(f"cleanup of {self.name} failed: {error}", file=sys.stderr)


def make_backend(name: str, args: argparse.Namespace, workdir: Path, tag: str = "small") -> Backend:
    """A fresh SQLite file + memory://, or a scratch PostgreSQL database + Redis."""
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = f"bench-{os.getpid()}-{name}-{tag}"
    if name == "sqlite":
        backend = Backend(name, f"sqlite:///{workdir / 'bench.db'}", "memory://", workdir)
    else:
        import psycopg

        database = f"bench_api_{os.getpid()}_{tag}"
        with psycopg.connect(args.postgres_admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database}")
            admin.execute(f"CREATE DATABASE {database}")
        base = args.postgres_admin_url.rsplit("/", 1)[0]
        backend = Backend(name, f"{base}/{database}", args.redis_url, workdir)

        def drop_database() -> None:
            with psycopg.connect(args.postgres_admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

        def clear_counters() -> None:
            import redis

            client = redis.Redis.from_url(args.redis_url)
            for pattern in (f"{prefix}*", f"huey.*{prefix.replace('-', '')}*"):
                keys = list(client.scan_iter(pattern, count=1000))
                if keys:
                    client.delete(*keys)
            client.close()

        backend.cleanup += [drop_database, clear_counters]
    backend.env = {
        **os.environ,
        # SQLite + memory:// is the one-host set-up; production refuses memory:// limits with
        # several gunicorn workers (each would count on its own), development only warns.
        # Nothing else on the API's path depends on PORTAL_ENV but the HSTS header.
        "PORTAL_ENV": "development" if name == "sqlite" else "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "API_KEY_PEPPER": secrets.token_urlsafe(32),
        "PORTAL_URL": "https://keys.shop-platform.example",
        "PORTAL_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": backend.database_url,
        "RATELIMIT_STORAGE_URI": backend.storage_uri,
        "RATELIMIT_KEY_PREFIX": prefix,
        "FLASK_APP": "wsgi",
    }
    if name != "sqlite":  # production on PostgreSQL needs the shared queue (nothing is queued)
        backend.env["TASK_QUEUE_URL"] = args.redis_url
        backend.env["TASK_QUEUE_NAME"] = prefix
    return backend


@contextlib.contextmanager
def app_for(backend: Backend) -> Iterator[Any]:
    """The portal app on the backend's database, in this process (for seeding)."""
    saved = dict(os.environ)
    os.environ.update(backend.env)
    try:
        from portal import create_app
        from portal.extensions import db

        app = create_app()
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def migrate_and_seed(backend: Backend, key_count: int) -> Path:
    """`flask db upgrade`, the demo store and `key_count` publishable keys; returns their file."""
    subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=backend.env,
        check=True,
        capture_output=True,
    )
    with app_for(backend):
        from portal.accounts import service as accounts
        from portal.demo import DEMO_EMAIL, seed
        from portal.keys import service as keys

        seed()
        user = accounts.find_user(DEMO_EMAIL)
        actor = keys.Actor(name=user.email, user_id=user.id)
        tokens = []
        for number in range(key_count):
            settings = keys.KeySettings(label=f"bench {number}", rate_limit=10_000)
            tokens.append(keys.create_key(user.merchant_id, "publishable", settings, actor)[1])
    keys_file = backend.workdir / "keys.txt"
    keys_file.write_text("\n".join(tokens) + "\n")
    return keys_file


def fill_key_table(backend: Backend, total: int) -> float:
    """Bulk-insert random key hashes until the table holds `total` keys; returns the seconds."""
    started = time.monotonic()
    with app_for(backend):
        from sqlalchemy import text

        from portal.extensions import db

        existing = db.session.scalar(text("SELECT count(*) FROM api_keys"))
        merchant_id = db.session.scalar(text("SELECT min(id) FROM merchants"))
        missing = total - existing
        if missing <= 0:
            return 0.0
        if db.engine.dialect.name == "postgresql":
            statement = (
                "INSERT INTO api_keys (merchant_id, key_type, mode, label, description, scopes, "
                "allowed_origins, allowed_ip_ranges, rate_limit, key_hash, prefix, last4, "
                "created_at, created_by_name, logged_state) "
                "SELECT :merchant, 'secret', 'live', 'filler', '', '[\"products:read\"]', '[]', "
                "'[]', 60, md5(random()::text || n::text) || md5(random()::text || n::text), "
                "'sk_live_', right(md5(n::text), 4), now(), 'bench', 'active' "
                "FROM generate_series(1, :missing) AS n"
            )
        else:
            statement = (
                "WITH RECURSIVE n(i) AS "
                "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :missing) "
                "INSERT INTO api_keys (merchant_id, key_type, mode, label, description, scopes, "
                "allowed_origins, allowed_ip_ranges, rate_limit, key_hash, prefix, last4, "
                "created_at, created_by_name, logged_state) "
                "SELECT :merchant, 'secret', 'live', 'filler', '', '[\"products:read\"]', '[]', "
                "'[]', 60, lower(hex(randomblob(32))), 'sk_live_', "
                "substr(lower(hex(randomblob(2))), 1, 4), datetime('now'), 'bench', 'active' FROM n"
            )
        db.session.execute(text(statement), {"merchant": merchant_id, "missing": missing})
        db.session.commit()
        db.session.execute(text("ANALYZE api_keys"))
        db.session.commit()
    return time.monotonic() - started


def fill_products(backend: Backend, published: int) -> float:
    """Bulk-insert published products until the demo store has `published` of them, spread over
    its markets (every product in the first market, every other one in the second too);
    returns the seconds. The catalog's first page (by id) is then the same 20 products in a
    store of 20 and in one of 100,000: the measurement sees the size of the tables alone."""
    started = time.monotonic()
    with app_for(backend):
        from sqlalchemy import text

        from portal.extensions import db

        merchant_id = db.session.scalar(text("SELECT min(id) FROM merchants"))
        existing = db.session.scalar(
            text("SELECT count(*) FROM products WHERE merchant_id = :m AND published"),
            {"m": merchant_id},
        )
        missing = published - existing
        if missing <= 0:
            return 0.0
        postgres = db.engine.dialect.name == "postgresql"
        rows = (
            "FROM generate_series(1, :missing) AS n(i)"
            if postgres
            else "FROM (WITH RECURSIVE n(i) AS "
            "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :missing) SELECT i FROM n)"
        )
        now = "now()" if postgres else "datetime('now')"
        true = "true" if postgres else "1"
        db.session.execute(
            text(
                "INSERT INTO products (merchant_id, name, description, price, currency, sku, "
                "inventory, published, created_at, updated_at) "
                f"SELECT :merchant, 'Bench product ' || i, 'A product of the bench.', "
                f"100 + i % 9900, 'USD', 'BENCH-' || i, i % 100, {true}, {now}, {now} {rows}"
            ),
            {"merchant": merchant_id, "missing": missing},
        )
        db.session.execute(
            text(
                "INSERT INTO product_markets (product_id, market_id) "
                "SELECT p.id, m.id FROM products p JOIN markets m ON m.merchant_id = p.merchant_id "
                "WHERE p.merchant_id = :merchant AND p.sku LIKE 'BENCH-%' "
                "AND (m.id = (SELECT min(id) FROM markets WHERE merchant_id = :merchant) "
                "OR p.id % 2 = 0)"
            ),
            {"merchant": merchant_id},
        )
        db.session.commit()
        for table in ("products", "product_markets"):
            db.session.execute(text(f"ANALYZE {table}"))
        db.session.commit()
    return time.monotonic() - started


def bare_app() -> Any:
    """Target 5's reference: a bare Flask app answering JSON (no extension, no hook, no data).

    Served by gunicorn with the same gunicorn.conf.py: `gunicorn -c gunicorn.conf.py
    'bench.api:bare_app()'`.
    """
    from flask import Flask

    app = Flask("bare")

    @app.get("/api/v1/key")
    def key() -> dict[str, Any]:
        return {
            "id": 1,
            "object": "api_key",
            "type": "publishable",
            "mode": "live",
            "scopes": ["catalog:read", "cart:write", "checkout:create", "customer:auth"],
            "market": None,
            "rate_limit": 10_000,
            "expires_at": None,
        }

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# ---------------------------------------------------------------------------------------------
# The server


@contextlib.contextmanager
def gunicorn(
    backend: Backend, workers: int, log: Path, app: str | None = None
) -> Iterator[tuple[int, subprocess.Popen]]:
    """gunicorn with gunicorn.conf.py on a free 127.0.0.1 port (this project, or `app`);
    stopped with SIGTERM afterwards."""
    port = free_port()
    env = {
        **backend.env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_ACCESS_LOG": "",  # the ceiling and the API would both pay for it
    }
    with log.open("ab") as output:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", *([app] if app else [])],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start; see {log}") from None
                time.sleep(0.2)
        time.sleep(1.0)  # let every worker boot
        yield port, server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def worker_pids(master: int) -> list[int]:
    """The pids of gunicorn's workers (the master's children)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


TICKS = os.sysconf("SC_CLK_TCK")


def workers_cpu(master: int) -> float:
    """CPU seconds (user + system) the server's workers have used so far."""
    total = 0
    for pid in worker_pids(master):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


# ---------------------------------------------------------------------------------------------
# wrk


@dataclass
class Sample:
    """One wrk run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    cpu_us: float = 0.0  # the server's workers' CPU time (user + system) per request

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def run_wrk(
    wrk: str, port: int, endpoint: str, keys_file: Path, args: argparse.Namespace, seconds: float
) -> Sample:
    """One bounded wrk run against one endpoint."""
    path, auth = ENDPOINTS[endpoint]
    script = keys_file.parent / "bench.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_KEYS": str(keys_file),
        "BENCH_PATH": path,
        "BENCH_AUTH": "1" if auth else "0",
    }
    result = subprocess.run(
        [
            wrk,
            f"-t{args.wrk_threads}",
            f"-c{args.connections}",
            f"-d{int(seconds)}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return Sample(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        non_2xx=data["non_2xx"],
        socket_errors=data["socket_errors"],
    )


@dataclass
class Summary:
    """Rounds of one endpoint, summed (req/s) and by median (latencies)."""

    endpoint: str
    samples: list[Sample]

    @property
    def rate(self) -> float:
        """Requests per second over every round."""
        return sum(s.requests for s in self.samples) / sum(s.seconds for s in self.samples)

    @property
    def p50(self) -> float:
        """Median of the rounds' medians, in ms."""
        return statistics.median(s.p50_ms for s in self.samples)

    @property
    def p99(self) -> float:
        """Median of the rounds' 99th percentiles, in ms."""
        return statistics.median(s.p99_ms for s in self.samples)

    @property
    def worst_p99(self) -> float:
        """The worst round's 99th percentile, in ms."""
        return max(s.p99_ms for s in self.samples)

    @property
    def cpu_us(self) -> float:
        """The server workers' CPU per request over every round, in µs."""
        return sum(s.cpu_us * s.requests for s in self.samples) / sum(
            s.requests for s in self.samples
        )

    @property
    def failures(self) -> int:
        """Responses that were not 2xx, and socket errors."""
        return sum(s.non_2xx + s.socket_errors for s in self.samples)


@dataclass
class Target:
    """One server and endpoint that wrk rounds alternate over."""

    label: str
    port: int
    endpoint: str
    keys_file: Path
    master: int = 0  # gunicorn's master pid: its workers' CPU is measured around each run


@dataclass
class Measured:
    """The rounds of each target, and the load average at the start of each round."""

    summaries: dict[str, Summary]
    loads: list[float]

    def ratios(self, label: str, reference: str) -> list[float]:
        """`label`'s req/s over `reference`'s, round by round (the rounds alternate)."""
        return [
            mine.rate / theirs.rate
            for mine, theirs in zip(
                self.summaries[label].samples, self.summaries[reference].samples, strict=True
            )
        ]


def interleaved(wrk: str, targets: list[Target], args: argparse.Namespace) -> Measured:
    """Warm every target up, then `rounds` rounds alternating between the targets (the order
    reversed every other round, so no target always follows the same one)."""
    for target in targets:
        run_wrk(wrk, target.port, target.endpoint, target.keys_file, args, args.warmup)
    samples: dict[str, list[Sample]] = {target.label: [] for target in targets}
    loads: list[float] = []
    for number in range(args.rounds):
        loads.append(os.getloadavg()[0])
        order = targets if number % 2 == 0 else list(reversed(targets))
        for target in order:
            before = workers_cpu(target.master) if target.master else 0.0
            sample = run_wrk(
                wrk, target.port, target.endpoint, target.keys_file, args, args.duration
            )
            if target.master:
                used = workers_cpu(target.master) - before
                sample.cpu_us = used * 1e6 / max(sample.requests, 1)
            samples[target.label].append(sample)
            print(
                f"    round {number + 1}: {target.label:48} {sample.rate:8.0f} req/s "
                f"(load {loads[-1]:.1f})",
                flush=True,
            )
    loads.append(os.getloadavg()[0])
    return Measured({label: Summary(label, found) for label, found in samples.items()}, loads)


# ---------------------------------------------------------------------------------------------
# The parts of a run


def _load_line(measured: Measured) -> str:
    return (
        f"Load average (1 min) during the rounds: {min(measured.loads):.1f} to "
        f"{max(measured.loads):.1f} on {len(os.sched_getaffinity(0))} CPUs."
    )


def _spread(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f} to {max(ratios):.2f})"


BARE = "bare Flask JSON `GET /api/v1/key`"
PROJECT_KEY = "project `GET /api/v1/key`"


def floor_table(label: str, measured: Measured, target: float) -> tuple[str, dict[str, Any]]:
    """Target 5: the project against the bare Flask app, both under gunicorn."""
    rows = [
        f"#### Target 5, {label}: the project against a bare Flask app under gunicorn",
        "",
        "| server and endpoint | req/s | ratio to bare Flask | ratio per round, median "
        "(range) | workers' CPU µs/request | p50 ms | p99 ms | worst p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    numbers: dict[str, Any] = {}
    reference = measured.summaries[BARE].rate
    for name, summary in measured.summaries.items():
        per_round = measured.ratios(name, BARE)
        rows.append(
            f"| {name} | {summary.rate:,.0f} | {summary.rate / reference:.2f} | "
            f"{_spread(per_round)} | {summary.cpu_us:,.0f} | {summary.p50:.1f} | "
            f"{summary.p99:.1f} | {summary.worst_p99:.1f} | {summary.failures} |"
        )
        numbers[name] = {**_numbers(summary), "ratio": round(summary.rate / reference, 3)}
    # The verdict goes by the median of the rounds' ratios: each round measures both servers
    # back to back, so a round disturbed by another process moves one ratio, not the median.
    overall = measured.summaries[PROJECT_KEY].rate / reference
    ratio = statistics.median(measured.ratios(PROJECT_KEY, BARE))
    verdict = "met" if ratio >= target else "not met"
    rows += [
        "",
        f"Target 5 ({label}): `/api/v1/key` at ≥ {target:.2f} of the bare app's req/s: "
        f"**{ratio:.2f} (median of the rounds; {overall:.2f} over all rounds), {verdict}**.",
        "",
        _load_line(measured),
    ]
    numbers["target"] = {
        "ratio": round(ratio, 3),
        "overall": round(overall, 3),
        "needed": target,
        "met": ratio >= target,
    }
    numbers["load"] = measured.loads
    return "\n".join(rows) + "\n", numbers


def size_table(
    label: str, args: argparse.Namespace, measured: Measured, fills: dict[str, float]
) -> tuple[str, dict[str, Any]]:
    """Target 6: the same endpoints on a small and a big database, two servers at once."""
    small = f"{args.keys:,} keys / {args.products:,} products"
    big = f"{args.big_keys:,} keys / {args.big_products:,} products"
    rows = [
        f"#### Target 6, {label}: {small} against {big}, two servers in alternating rounds",
        "",
        f"(the big database was filled with bulk SQL: keys in {fills['keys']:.0f} s, products "
        f"in {fills['products']:.0f} s, then ANALYZEd; both catalogs' first page is the same "
        f"{args.products} products)",
        "",
        f"| endpoint | req/s, {small} | req/s, {big} | change | change per round, median "
        "(range) | workers' CPU µs/request small / big | p50 ms small / big | p99 ms small / big "
        "| non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    numbers: dict[str, Any] = {"fill_seconds": fills}
    verdicts = []
    for endpoint in ("key", "catalog"):
        one, other = measured.summaries[f"small {endpoint}"], measured.summaries[f"big {endpoint}"]
        change = other.rate / one.rate - 1
        per_round = [r - 1 for r in measured.ratios(f"big {endpoint}", f"small {endpoint}")]
        rows.append(
            f"| `GET {ENDPOINTS[endpoint][0]}` | {one.rate:,.0f} | {other.rate:,.0f} | "
            f"{change:+.1%} | {statistics.median(per_round):+.1%} ({min(per_round):+.1%} to "
            f"{max(per_round):+.1%}) | {one.cpu_us:,.0f} / {other.cpu_us:,.0f} | "
            f"{one.p50:.1f} / {other.p50:.1f} | "
            f"{one.p99:.1f} / {other.p99:.1f} | {one.failures + other.failures} |"
        )
        median = statistics.median(per_round)  # the verdict's figure, as for target 5
        met = median >= -0.10
        verdicts.append(
            f"`{ENDPOINTS[endpoint][0]}` {median:+.1%} (median of the rounds; {change:+.1%} over "
            f"all rounds), {'met' if met else 'not met'}"
        )
        numbers[endpoint] = {
            "small": _numbers(one),
            "big": _numbers(other),
            "change": round(median, 4),
            "overall": round(change, 4),
            "met": met,
        }
    rows += [
        "",
        f"Target 6 ({label}): within 10% of the small database: **{'; '.join(verdicts)}**.",
        "",
        _load_line(measured),
    ]
    numbers["load"] = measured.loads
    return "\n".join(rows) + "\n", numbers


def first_page(port: int, keys_file: Path) -> dict[str, Any]:
    """The catalog's first page as one of the keys sees it."""
    token = keys_file.read_text().split()[0]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/catalog/products")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1
        return json.loads(response.read())


def measure_backend(
    name: str, args: argparse.Namespace, wrk: str, workdir: Path
) -> tuple[str, dict[str, Any]]:
    """Target 5 on one backend, then (unless --no-big) target 6."""
    report: list[str] = []
    numbers: dict[str, Any] = {}
    label = "SQLite + memory://" if name == "sqlite" else "PostgreSQL + Redis"
    needed = 0.75 if name == "sqlite" else 0.50
    small = make_backend(name, args, workdir / "small", "small")
    big = make_backend(name, args, workdir / "big", "big") if args.big else None
    try:
        print(f"== {name}: the small database ({args.keys:,} keys, {args.products} products)")
        keys_small = migrate_and_seed(small, args.keys)
        fill_products(small, args.products)
        with contextlib.ExitStack() as servers:
            port, small_server = servers.enter_context(
                gunicorn(small, args.workers, workdir / "small.log")
            )
            bare, bare_server = servers.enter_context(
                gunicorn(small, args.workers, workdir / "bare.log", app="bench.api:bare_app()")
            )
            print(f"== {name}: target 5, {args.rounds} alternating rounds of {args.duration}s")
            measured = interleaved(
                wrk,
                [
                    Target(BARE, bare, "key", keys_small, bare_server.pid),
                    Target(PROJECT_KEY, port, "key", keys_small, small_server.pid),
                    Target("project `GET /healthz`", port, "healthz", keys_small, small_server.pid),
                    Target(
                        "project `GET /api/v1/catalog/products`",
                        port,
                        "catalog",
                        keys_small,
                        small_server.pid,
                    ),
                ],
                args,
            )
            text, numbers["target_5"] = floor_table(label, measured, needed)
            report.append(text)
            print(text, flush=True)
            if big is None:
                return "\n".join(report), numbers
            print(f"== {name}: the big database ({args.big_keys:,} keys, {args.big_products:,})")
            keys_big = migrate_and_seed(big, args.keys)
            fills = {
                "keys": fill_key_table(big, args.big_keys),
                "products": fill_products(big, args.big_products),
            }
            print(f"   filled: keys {fills['keys']:.0f}s, products {fills['products']:.0f}s")
            big_port, big_server = servers.enter_context(
                gunicorn(big, args.workers, workdir / "big.log")
            )
            pages = [first_page(port, keys_small), first_page(big_port, keys_big)]
            ids = [[item["id"] for item in page["data"]] for page in pages]
            print(
                f"   first pages: {len(ids[0])} and {len(ids[1])} products, has_more "
                f"{pages[0]['has_more']} / {pages[1]['has_more']}"
            )
            if len(ids[0]) != len(ids[1]) or not pages[1]["has_more"]:
                raise SystemExit(f"the two catalogs' first pages differ: {ids}")
            print(f"== {name}: target 6, {args.rounds} alternating rounds of {args.duration}s")
            measured = interleaved(
                wrk,
                [
                    Target("small key", port, "key", keys_small, small_server.pid),
                    Target("big key", big_port, "key", keys_big, big_server.pid),
                    Target("small catalog", port, "catalog", keys_small, small_server.pid),
                    Target("big catalog", big_port, "catalog", keys_big, big_server.pid),
                ],
                args,
            )
            text, numbers["target_6"] = size_table(label, args, measured, fills)
            report.append(text)
            print(text, flush=True)
    finally:
        small.close()
        if big is not None:
            big.close()
    return "\n".join(report), numbers


def _numbers(summary: Summary) -> dict[str, float]:
    return {
        "rate": round(summary.rate, 1),
        "p50_ms": round(summary.p50, 2),
        "p99_ms": round(summary.p99, 2),
        "worst_p99_ms": round(summary.worst_p99, 2),
        "cpu_us_per_request": round(summary.cpu_us, 1),
        "failures": summary.failures,
    }


def crash_loss(args: argparse.Namespace, wrk: str, workdir: Path) -> tuple[str, dict[str, Any]]:
    """Kill -9 a worker in the middle of a burst; compare the calls answered and counted."""
    from sqlalchemy import text

    backend = make_backend("sqlite", args, workdir)
    rows = []
    try:
        keys_file = migrate_and_seed(backend, min(args.keys, 200))
        for trial in range(args.crash_trials):
            with app_for(backend):
                from portal.extensions import db

                before = db.session.scalar(text("SELECT coalesce(sum(calls), 0) FROM usage_hourly"))
            with gunicorn(backend, args.workers, workdir / "crash.log") as (port, server):

                def kill_one(master: int = server.pid) -> None:
                    time.sleep(args.crash_burst / 2)
                    pids = worker_pids(master)
                    if pids:
                        os.kill(pids[0], signal.SIGKILL)

                killer = threading.Thread(target=kill_one)
                killer.start()
                sample = run_wrk(wrk, port, "key", keys_file, args, args.crash_burst)
                killer.join()
            # The server stopped gracefully: every surviving worker flushed in worker_exit.
            with app_for(backend):
                from portal.extensions import db

                after = db.session.scalar(text("SELECT coalesce(sum(calls), 0) FROM usage_hourly"))
            counted = after - before
            lost = sample.requests - counted
            rows.append((trial + 1, sample.requests, counted, lost, sample.socket_errors))
            print(f"    trial {trial + 1}: answered {sample.requests}, counted {counted}")
    finally:
        backend.close()
    worst = max(row[3] for row in rows)
    lines = [
        f"#### Usage lost when a worker is killed with SIGKILL ({args.workers} workers, "
        f"USAGE_FLUSH_SECONDS=2, {args.crash_burst}s bursts of `GET /api/v1/key`)",
        "",
        "| trial | responses received | calls counted | lost | socket errors |",
        "|---:|---:|---:|---:|---:|",
        *[
            f"| {t} | {sent:,} | {got:,} | {lost:,} | {errors} |"
            for t, sent, got, lost, errors in rows
        ],
        "",
        f"Worst loss: {worst:,} calls.",
    ]
    return "\n".join(lines) + "\n", {"trials": rows, "worst": worst}


def profile(args: argparse.Namespace, workdir: Path) -> str:
    """Profile `GET /api/v1/key` in-process with pyinstrument (the bench extra)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[bench]"], check=True
        )
        from pyinstrument import Profiler
    backend = make_backend(args.profile_backend, args, workdir)
    try:
        keys_file = migrate_and_seed(backend, 50)
        tokens = keys_file.read_text().split()
        with app_for(backend) as app:
            client = app.test_client()
            path = ENDPOINTS[args.profile][0]
            for token in tokens:  # warm caches and connections
                client.get(path, headers={"Authorization": f"Bearer {token}"})
            profiler = Profiler(interval=0.0002)
            profiler.start()
            for number in range(args.profile_requests):
                token = tokens[number % len(tokens)]
                response = client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 200, response.get_data(as_text=True)
            profiler.stop()
            return profiler.output_text(unicode=True, color=False, show_all=False)
    finally:
        backend.close()


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    cpus = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument("--workers", type=int, default=2 * cpus + 1, help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per endpoint")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--keys", type=int, default=1000, help="keys created through the service, per database"
    )
    parser.add_argument(
        "--products", type=int, default=20, help="published products of the small database"
    )
    parser.add_argument(
        "--big-keys", type=int, default=1_000_000, help="keys in the big database (bulk SQL)"
    )
    parser.add_argument(
        "--big-products", type=int, default=100_000, help="products of the big database"
    )
    parser.add_argument(
        "--no-big", dest="big", action="store_false", help="target 5 only (no big database)"
    )
    parser.add_argument(
        "--crash-loss", action="store_true", help="measure usage lost on a worker SIGKILL"
    )
    parser.add_argument("--crash-trials", type=int, default=3)
    parser.add_argument("--crash-burst", type=int, default=6, help="seconds per burst")
    parser.add_argument(
        "--profile",
        choices=list(ENDPOINTS)[1:],
        help="only profile this endpoint in-process with pyinstrument",
    )
    parser.add_argument("--profile-backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--profile-requests", type=int, default=5000)
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to for CREATE/DROP DATABASE of the scratch database",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    for url in (args.postgres_admin_url, args.redis_url):
        if "127.0.0.1" not in url and "localhost" not in url:
            parser.error(f"{url}: this benchmark only runs against 127.0.0.1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a Markdown report."""
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            print(profile(args, workdir))
            return
        wrk = ensure_wrk()
        started = time.monotonic()
        load_before = os.getloadavg()
        info = machine()
        wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
        command = " ".join([".venv/bin/python", "bench/api.py", *(argv or sys.argv[1:])])
        report = [
            "### Run",
            "",
            f"- command: `{command}`",
            f"- machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}, {info['os']}",
            f"- Python {info['python']}, {wrk_version.split(chr(10))[0].strip()}",
            f"- every server: gunicorn.conf.py with {args.workers} sync workers, access log off; "
            f"wrk -t{args.wrk_threads} -c{args.connections}, {args.rounds} rounds x "
            f"{args.duration}s per server and endpoint, alternating, after {args.warmup}s of "
            "warm-up each",
            f"- load average (1 min) at the start: {load_before[0]:.1f}",
            "",
        ]
        numbers: dict[str, Any] = {"machine": info, "command": command}
        for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
            part_dir = workdir / name
            part_dir.mkdir()
            text, found = measure_backend(name, args, wrk, part_dir)
            report.append(text)
            numbers[name] = found
        if args.crash_loss:
            part_dir = workdir / "crash"
            part_dir.mkdir()
            text, found = crash_loss(args, wrk, part_dir)
            report.append(text)
            numbers["crash_loss"] = found
            print(text, flush=True)
        load_after = os.getloadavg()
        report.append(
            f"(the whole run took {time.monotonic() - started:.0f} s; load average "
            f"{load_before[0]:.1f} before, {load_after[0]:.1f} after)\n"
        )
    markdown = "\n".join(report)
    print(markdown)
    if args.output:
        args.output.write_text(markdown)
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
