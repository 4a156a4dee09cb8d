"""Scale-out fixtures: gunicorn (gunicorn.conf.py), private redis-server and nginx, as processes.

Every process started here binds 127.0.0.1 on a free port, is waited for with a deadline, and is
stopped by its finalizer whatever the test did (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Server:
    """A running gunicorn: its port, its process and its log (stdout and stderr)."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything gunicorn and the app logged so far."""
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, token: str | None = None, timeout: float = 10) -> tuple[int, Any]:
        """One request on a new connection: (status, headers)."""
        request = urllib.request.Request(self.url + path)  # noqa: S310 - 127.0.0.1 only
        request.add_header("Connection", "close")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            error.read()
            return error.code, error.headers

    def worker_pids(self) -> list[int]:
        """The workers' pids (the master's children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@dataclass
class ServerFactory:
    """Starts gunicorn servers for a test and stops every one of them afterwards."""

    app: Flask
    tmp_path: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __call__(self, workers: int = 3, **environ: str) -> Server:
        """gunicorn with gunicorn.conf.py, on the tests' database and this app's secrets."""
        port = free_port()
        log_path = self.tmp_path / f"gunicorn-{port}.log"
        env = {
            **os.environ,
            "PORTAL_ENV": "production",
            "SECRET_KEY": self.app.config["SECRET_KEY"],
            "API_KEY_PEPPER": self.app.config["API_KEY_PEPPER"].decode(),
            "PORTAL_URL": "https://keys.shop-platform.example",
            "DATABASE_URL": self.app.config["SQLALCHEMY_DATABASE_URI"],
            "PORTAL_INSTANCE_PATH": str(self.tmp_path / "instance"),
            "RATELIMIT_KEY_PREFIX": f"scale-{secrets.token_hex(6)}",
            # Production on PostgreSQL refuses the one-host SQLite queue (portal.config).
            "TASK_QUEUE_URL": os.environ.get("TEST_REDIS_URL", ""),
            "TASK_QUEUE_NAME": f"scale-{secrets.token_hex(6)}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_LOG_LEVEL": "info",
            **environ,
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py")],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started.append(process)
        server = Server(port, process, log_path)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{server.log()}")
            try:
                return server.get("/healthz", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(ready, START_TIMEOUT_SECONDS, "gunicorn to answer /healthz")
        wait_until(
            lambda: (
                len(server.worker_pids()) == workers
                and server.log().count("Booting worker") >= workers
            ),
            START_TIMEOUT_SECONDS,
            f"{workers} workers to boot",
        )
        return server

    def stop_all(self) -> None:
        """Stop every server this factory started."""
        for process in self.started:
            stop(process)


@pytest.fixture
def serve(app: Flask, tmp_path: Path) -> Iterator[ServerFactory]:
    """`serve(workers=3, **environ)` starts gunicorn; all of them stop after the test."""
    factory = ServerFactory(app, tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@dataclass
class RedisServer:
    """A private redis-server on its own port, without persistence."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers."""
        import redis

        binary = shutil.which("redis-server")
        assert binary is not None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def answers() -> bool:
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                    return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, START_TIMEOUT_SECONDS, "redis-server to answer PING")

    def kill(self) -> None:
        """SIGKILL: gone at once, connections dropped mid-stream."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> Any:
        """A redis-py client."""
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server, killed after the test."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; CI has it)")
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def postgres_url(database_url: str) -> str:
    """The PostgreSQL test database; skips without TEST_DATABASE_URL."""
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL); .ci/run sets it")
    return database_url


@pytest.fixture
def redis_url() -> str:
    """The shared test Redis; skips without TEST_REDIS_URL."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("needs TEST_REDIS_URL (Redis); .ci/run sets it")
    return url


NGINX_CONF = """
daemon off;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""


@dataclass
class Nginx:
    """A private nginx reverse proxy: its own config, logs and temp files in a temp directory."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self, upstream: int) -> None:
        """Proxy 127.0.0.1:port to 127.0.0.1:upstream, and wait until it accepts connections."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.directory.mkdir(parents=True, exist_ok=True)
        # As root the workers would drop to `nobody`, who cannot enter pytest's 0700 temp dirs.
        user = "user root;" if os.geteuid() == 0 else ""
        config = self.directory / "nginx.conf"
        config.write_text(
            NGINX_CONF.format(user=user, dir=self.directory, port=self.port, upstream=upstream)
        )
        self.process = subprocess.Popen(
            [binary, "-p", str(self.directory), "-c", str(config), "-e", self.error_log_path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

        def accepts() -> bool:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"nginx exited with {self.process.returncode}:\n{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(accepts, START_TIMEOUT_SECONDS, "nginx to accept connections")

    @property
    def error_log_path(self) -> str:
        """Where nginx writes its errors (never /var/log/nginx)."""
        return str(self.directory / "error.log")

    def error_log(self) -> str:
        """nginx's error log so far."""
        path = Path(self.error_log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> str:
        """nginx's access log so far."""
        path = self.directory / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        if self.process is not None:
            stop(self.process)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    """A private nginx on a free loopback port; `nginx.start(upstream_port)`; stopped after."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (Debian package nginx; .ci/run installs it)")
    server = Nginx(tmp_path / "nginx", free_port())
    try:
        yield server
    finally:
        server.stop()
