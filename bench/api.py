"""Load benchmark of the API gate: gunicorn (gunicorn.conf.py) on 127.0.0.1, driven by wrk.

One run measures, interleaved round by round, `GET /healthz` (the framework's ceiling), the
authenticated `GET /api/v1/key` and `GET /api/v1/catalog/products`, on SQLite + memory:// and on
PostgreSQL + Redis; optionally /api/v1/key with 1,000 and then 1,000,000 keys in the table, and
the usage lost when a worker is killed with SIGKILL during a burst.

    .venv/bin/python bench/api.py --help

Everything runs on this machine: the server binds 127.0.0.1 only, every wrk run is bounded in
time, and the scratch PostgreSQL database and Redis counters are removed at the end.
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


def make_backend(name: str, args: argparse.Namespace, workdir: Path) -> Backend:
    """A fresh SQLite file + memory://, or a scratch PostgreSQL database + Redis."""
    prefix = f"bench-{os.getpid()}-{name}"
    if name == "sqlite":
        backend = Backend(name, f"sqlite:///{workdir / 'bench.db'}", "memory://", workdir)
    else:
        import psycopg

        database = f"bench_api_{os.getpid()}"
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
            keys = list(client.scan_iter(f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()

        backend.cleanup += [drop_database, clear_counters]
    backend.env = {
        **os.environ,
        "PORTAL_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "API_KEY_PEPPER": secrets.token_urlsafe(32),
        "PORTAL_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": backend.database_url,
        "RATELIMIT_STORAGE_URI": backend.storage_uri,
        "RATELIMIT_KEY_PREFIX": prefix,
        "FLASK_APP": "wsgi",
    }
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


# ---------------------------------------------------------------------------------------------
# The server


@contextlib.contextmanager
def gunicorn(backend: Backend, workers: int, log: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """gunicorn with gunicorn.conf.py on a free 127.0.0.1 port; stopped with SIGTERM afterwards."""
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
            [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py"],
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
    def failures(self) -> int:
        """Responses that were not 2xx, and socket errors."""
        return sum(s.non_2xx + s.socket_errors for s in self.samples)


def interleaved(
    wrk: str, port: int, endpoints: list[str], keys_file: Path, args: argparse.Namespace
) -> dict[str, Summary]:
    """Warm every endpoint up, then `rounds` rounds that alternate between the endpoints."""
    for endpoint in endpoints:
        run_wrk(wrk, port, endpoint, keys_file, args, args.warmup)
    samples: dict[str, list[Sample]] = {endpoint: [] for endpoint in endpoints}
    for number in range(args.rounds):
        order = endpoints if number % 2 == 0 else list(reversed(endpoints))
        for endpoint in order:
            samples[endpoint].append(run_wrk(wrk, port, endpoint, keys_file, args, args.duration))
            print(
                f"    round {number + 1}: {endpoint:8} {samples[endpoint][-1].rate:8.0f} req/s",
                flush=True,
            )
    return {endpoint: Summary(endpoint, found) for endpoint, found in samples.items()}


# ---------------------------------------------------------------------------------------------
# The parts of a run


def table(title: str, results: dict[str, Summary]) -> str:
    """A Markdown table of one interleaved measurement."""
    ceiling = results["healthz"].rate
    lines = [
        f"#### {title}",
        "",
        "| endpoint | req/s | ratio to /healthz | p50 ms | p99 ms | worst p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint, summary in results.items():
        lines.append(
            f"| `GET {ENDPOINTS[endpoint][0]}` | {summary.rate:,.0f} | "
            f"{summary.rate / ceiling:.2f} | {summary.p50:.1f} | {summary.p99:.1f} | "
            f"{summary.worst_p99:.1f} | {summary.failures} |"
        )
    return "\n".join(lines) + "\n"


def measure_backend(
    name: str, args: argparse.Namespace, wrk: str, workdir: Path
) -> tuple[str, dict[str, Any]]:
    """The interleaved measurement on one backend, then optionally 1,000 vs 1,000,000 keys."""
    report: list[str] = []
    numbers: dict[str, Any] = {}
    backend = make_backend(name, args, workdir)
    try:
        print(f"== {name}: migrating and creating {args.keys} keys", flush=True)
        keys_file = migrate_and_seed(backend, args.keys)
        label = "SQLite + memory://" if name == "sqlite" else "PostgreSQL + Redis"
        with gunicorn(backend, args.workers, workdir / "gunicorn.log") as (port, _server):
            print(f"== {name}: {args.rounds} interleaved rounds of {args.duration}s", flush=True)
            results = interleaved(wrk, port, list(ENDPOINTS), keys_file, args)
            report.append(table(f"{label}, {args.keys:,} keys", results))
            numbers["main"] = {e: _numbers(s, results) for e, s in results.items()}
            if args.million:
                small = interleaved(wrk, port, ["healthz", "key"], keys_file, args)
                print(f"== {name}: filling the key table to {args.million:,} keys", flush=True)
                seconds = fill_key_table(backend, args.million)
                print(f"   ({seconds:.0f}s)", flush=True)
                big = interleaved(wrk, port, ["healthz", "key"], keys_file, args)
                report.append(_size_table(label, args, small, big, seconds))
                numbers["table_size"] = {
                    "small": {e: _numbers(s, small) for e, s in small.items()},
                    "big": {e: _numbers(s, big) for e, s in big.items()},
                    "fill_seconds": seconds,
                }
    finally:
        backend.close()
    return "\n".join(report), numbers


def _numbers(summary: Summary, results: dict[str, Summary]) -> dict[str, float]:
    return {
        "rate": round(summary.rate, 1),
        "ratio": round(summary.rate / results["healthz"].rate, 3),
        "p50_ms": round(summary.p50, 2),
        "p99_ms": round(summary.p99, 2),
        "worst_p99_ms": round(summary.worst_p99, 2),
        "failures": summary.failures,
    }


def _size_table(
    label: str,
    args: argparse.Namespace,
    small: dict[str, Summary],
    big: dict[str, Summary],
    fill_seconds: float,
) -> str:
    lines = [
        f"#### {label}: `GET /api/v1/key` with {args.keys:,} vs {args.million:,} keys",
        "",
        f"(the table was filled with random hashes in {fill_seconds:.0f} s, then ANALYZEd)",
        "",
        "| keys in the table | /api/v1/key req/s | /healthz req/s | ratio | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for count, results in ((args.keys, small), (args.million, big)):
        key, ceiling = results["key"], results["healthz"]
        lines.append(
            f"| {count:,} | {key.rate:,.0f} | {ceiling.rate:,.0f} | "
            f"{key.rate / ceiling.rate:.2f} | {key.p50:.1f} | {key.p99:.1f} |"
        )
    change = big["key"].rate / small["key"].rate - 1
    lines += ["", f"Change in /api/v1/key req/s: {change:+.1%}."]
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--keys", type=int, default=1000, help="keys created through the service")
    parser.add_argument(
        "--million",
        type=int,
        nargs="?",
        const=1_000_000,
        default=0,
        help="also compare /api/v1/key with the key table filled to this many keys",
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
            f"- gunicorn.conf.py with {args.workers} sync workers; wrk -t{args.wrk_threads} "
            f"-c{args.connections}, {args.rounds} rounds x {args.duration}s per endpoint, "
            f"interleaved, after {args.warmup}s of warm-up; access log off",
            "",
        ]
        numbers: dict[str, Any] = {"machine": info, "command": command}
        for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
            part_dir = workdir / name
            part_dir.mkdir()
            text, found = measure_backend(name, args, wrk, part_dir)
            report.append(text)
            numbers[name] = found
            print(text, flush=True)
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
