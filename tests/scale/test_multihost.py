"""Several hosts behind a load balancer, for real: two app hosts in network namespaces of their
own, each running gunicorn (gunicorn.conf.py) and the background worker (`flask --app wsgi
worker`), behind Debian's nginx, sharing PostgreSQL and a Redis (limits and the task queue).

The layout (the README's "Several hosts" section describes the same deployment):

    client ──► nginx 127.0.0.1:P ──► 10.X.1.2:8000 host A (netns, gunicorn + worker)
                                 └─► 10.X.2.2:8000 host B (netns, gunicorn + worker)
    each host ──► 10.X.n.1:forwarded ports ──► PostgreSQL and Redis on 127.0.0.1

PostgreSQL and Redis listen on 127.0.0.1 only, so a small TCP forwarder thread in the root
namespace listens on each veth's root-side address and connects to them. Needs root and
`ip netns`; the namespaces are deleted whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import AuditEvent
from tests.factories import make_key
from tests.scale.conftest import (
    BIN,
    ROOT,
    START_TIMEOUT_SECONDS,
    RedisServer,
    free_port,
    stop,
    wait_until,
)

APP_PORT = 8000
SUBNET = 10 + os.getpid() % 200  # 10.<SUBNET>.<host>.0/24, unlikely to clash


def _can_use_netns() -> str | None:
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    probe = f"pmhprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if made.returncode != 0:
        return f"`ip netns add` is unavailable: {made.stderr.decode(errors='replace').strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def ip(*args: str) -> None:
    """Run `ip ...`; fail the test with its message if it fails."""
    done = subprocess.run(["ip", *args], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace')}")


class Forwarder:
    """Accept TCP on (address, port) and relay each connection to 127.0.0.1:target."""

    def __init__(self, address: str, target: int) -> None:
        self.target = target
        self.listener = socket.create_server((address, 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        self.threads.append(accepting)

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.closed:
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                pump.start()
                self.threads.append(pump)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting, end every relay and close every socket."""
        self.closed = True
        # close() alone leaves a thread blocked in accept() asleep: shutdown() wakes it (Linux).
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.threads[0].join(timeout=5)  # the acceptor: no new sockets after this
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(timeout=5)
        for end in self.sockets:
            end.close()


@dataclass
class Host:
    """One app host: a network namespace, its veth pair, and its gunicorn."""

    name: str
    number: int
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The host's own address (gunicorn binds it)."""
        return f"10.{SUBNET}.{self.number}.2"

    @property
    def gateway(self) -> str:
        """The root namespace's end of the veth pair (nginx connects from it)."""
        return f"10.{SUBNET}.{self.number}.1"

    @property
    def url(self) -> str:
        """The host's base URL, reachable from the root namespace."""
        return f"http://{self.address}:{APP_PORT}"

    def create(self) -> None:
        """The namespace, a veth pair with addresses, loopback and links up."""
        outside, inside = f"{self.name}o", f"{self.name}i"
        ip("netns", "add", self.name)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", self.name)
        ip("addr", "add", f"{self.gateway}/24", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", self.name, "addr", "add", f"{self.address}/24", "dev", inside)
        ip("-n", self.name, "link", "set", inside, "up")
        ip("-n", self.name, "link", "set", "lo", "up")

    def delete(self) -> None:
        """Remove the namespace (its veth end, and so the pair, goes with it)."""
        for process in (self.worker, self.process):
            if process is not None:
                stop(process, timeout=10)
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
        subprocess.run(["ip", "link", "delete", f"{self.name}o"], capture_output=True)

    def _spawn(self, command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (self.workdir / log_name).open("ab") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.name, *command],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, name: str = "gunicorn.log") -> str:
        """gunicorn's log on this host (or the worker's: "worker.log")."""
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def start_worker(self) -> None:
        """`flask --app wsgi worker` in the namespace, on the shared Redis queue."""
        self.worker = self._spawn(
            [str(BIN / "flask"), "--app", "wsgi", "worker", "--workers", "2"], "worker.log"
        )

        def consuming() -> bool:
            if self.worker is not None and self.worker.poll() is not None:
                pytest.fail(f"the worker on {self.name} exited:\n{self.log('worker.log')}")
            return "Periodic tasks of" in self.log("worker.log")  # its scheduler has looked

        wait_until(consuming, START_TIMEOUT_SECONDS, f"the worker on {self.name}")

    def mails(self) -> list[Path]:
        """The mails this host's worker delivered (console://: one .eml file each)."""
        return sorted((self.workdir / "instance" / "mail").glob("*.eml"))

    def start(self) -> None:
        """gunicorn in the namespace; waits until it answers /healthz."""
        self.process = self._spawn(
            [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py")], "gunicorn.log"
        )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"gunicorn on {self.name} exited:\n{self.log()}")
            return get(self.url + "/healthz", timeout=1)[0] == 200

        wait_until(ready, START_TIMEOUT_SECONDS, f"gunicorn on {self.name}")

    def kill(self) -> None:
        """SIGKILL the master and its workers: the host is gone."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        self.process.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        self.process.wait(timeout=10)

    def run_flask(self, *args: str) -> str:
        """A `flask` command on this host; returns its output."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, str(BIN / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout.decode()


def get(url: str, token: str | None = None, timeout: float = 5) -> tuple[int, Any]:
    """One GET on a new connection: (status, headers); (0, None) when nothing answered."""
    request = urllib.request.Request(url)  # noqa: S310 - private addresses only
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
    except OSError:
        return 0, None


NGINX_CONF = """
daemon off;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
  log_format upstreams '$remote_addr "$request" $status $upstream_addr';
  access_log {dir}/access.log upstreams;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream portal {{
    server {a}:{app_port} max_fails=1 fail_timeout=2s;
    server {b}:{app_port} max_fails=1 fail_timeout=2s;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://portal;
      proxy_connect_timeout 1s;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""


@dataclass
class Cluster:
    """nginx in front of two hosts."""

    a: Host
    b: Host
    nginx_dir: Path
    nginx_port: int
    redis: RedisServer
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The load balancer's base URL."""
        return f"http://127.0.0.1:{self.nginx_port}"

    def start_nginx(self) -> None:
        """Debian's nginx with the upstream of both hosts."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.nginx_dir.mkdir(parents=True, exist_ok=True)
        config = self.nginx_dir / "nginx.conf"
        config.write_text(
            NGINX_CONF.format(
                dir=self.nginx_dir,
                port=self.nginx_port,
                a=self.a.address,
                b=self.b.address,
                app_port=APP_PORT,
            )
        )
        with (self.nginx_dir / "stderr.log").open("ab") as log:
            self.nginx = subprocess.Popen(
                [binary, "-p", str(self.nginx_dir), "-c", str(config), "-e", "stderr"],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_until(lambda: get(self.url + "/healthz")[0] == 200, 20, "nginx to proxy")

    def queued(self) -> int:
        """Tasks waiting in the shared queue, now or scheduled (retries), on the private Redis."""
        client = self.redis.client()
        try:
            waiting = sum(client.llen(key) for key in client.scan_iter("huey.redis.*"))
            return waiting + sum(client.zcard(key) for key in client.scan_iter("huey.schedule.*"))
        finally:
            client.close()

    def server_errors(self) -> str:
        """What the hosts and nginx logged about errors: the story behind an unexpected 500."""
        found = []
        for host in (self.a, self.b):
            for name in ("gunicorn.log", "worker.log"):
                lines = host.log(name).splitlines()
                shown_until = 0
                for number, line in enumerate(lines):
                    if number >= shown_until and any(
                        mark in line for mark in ("Traceback", "Unhandled error", "[ERROR]")
                    ):
                        shown_until = number + 40
                        found.append(
                            f"{host.name} {name}:\n" + "\n".join(lines[number:shown_until])
                        )
        error_log = self.nginx_dir / "error.log"
        if error_log.exists():
            found += [line for line in error_log.read_text().splitlines() if "[error]" in line]
        return "\n".join(found) or "(no error in the hosts' or nginx's logs)"

    def upstreams(self) -> list[str]:
        """The upstream each proxied request went to, in order (nginx's access log)."""
        path = self.nginx_dir / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line.rsplit(" ", 1)[-1] for line in lines]


@pytest.fixture
def cluster(
    app: Flask, postgres_url: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Cluster]:
    """Two hosts and nginx, on the tests' PostgreSQL and a private Redis; all torn down after."""
    reason = _can_use_netns()
    if reason is not None:
        pytest.skip(reason)
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (Debian package nginx; .ci/run installs it)")
    tag = secrets.token_hex(2)
    hosts = [
        Host(f"pmh{tag}{name}", number, tmp_path / name) for number, name in ((1, "a"), (2, "b"))
    ]
    forwarders: list[Forwarder] = []
    cluster = Cluster(hosts[0], hosts[1], tmp_path / "nginx", free_port(), redis_server)
    database = make_url(postgres_url)
    prefix = f"multihost-{tag}"
    try:
        for host in hosts:
            host.workdir.mkdir()
            host.create()
            pg = Forwarder(host.gateway, database.port or 5432)
            rd = Forwarder(host.gateway, redis_server.port)
            forwarders += [pg, rd]
            redis_url = f"redis://{host.gateway}:{rd.port}/0"
            host.env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PORTAL_ENV": "production",
                "SECRET_KEY": app.config["SECRET_KEY"],
                "API_KEY_PEPPER": app.config["API_KEY_PEPPER"].decode(),
                "DATABASE_URL": database.set(host=host.gateway, port=pg.port).render_as_string(
                    hide_password=False
                ),
                "RATELIMIT_STORAGE_URI": redis_url,
                "RATELIMIT_KEY_PREFIX": prefix,
                "TASK_QUEUE_URL": redis_url,
                "TASK_QUEUE_NAME": prefix,
                "PORTAL_INSTANCE_PATH": str(host.workdir / "instance"),
                "PORTAL_URL": cluster.url,
                "MAIL_URL": "console://",
                "MAIL_DIR": str(host.workdir / "mail"),
                "HOST": host.address,
                "PORT": str(APP_PORT),
                "WEB_CONCURRENCY": "2",
                # nginx reaches each host from the root side of its veth: trust it, one hop.
                "FORWARDED_ALLOW_IPS": host.gateway,
                "PROXY_HOPS": "1",
                "USAGE_FLUSH_SECONDS": "0.5",
            }
            host.start()
        for host in hosts:
            host.start_worker()
        cluster.start_nginx()
        yield cluster
    finally:
        if cluster.nginx is not None:
            stop(cluster.nginx, timeout=10)
        for host in hosts:
            host.delete()
        for forwarder in forwarders:
            forwarder.close()


def test_a_key_revoked_through_host_a_is_refused_on_its_next_request_through_host_b(
    cluster: Cluster, user: User
) -> None:
    key, token = make_key(user, "secret")
    for _ in range(3):  # host B has seen the key and cached its row
        assert get(cluster.b.url + "/api/v1/key", token)[0] == 200

    output = cluster.a.run_flask("revoke-key", str(key.id))
    assert f"Revoked key {key.id}" in output

    status, _ = get(cluster.b.url + "/api/v1/key", token)
    assert status == 401


def test_a_key_limited_to_10_a_minute_gets_exactly_10_successes_across_both_hosts(
    cluster: Cluster, user: User
) -> None:
    _, token = make_key(user, "secret", rate_limit=10)
    statuses = [get(cluster.url + "/api/v1/key", token)[0] for _ in range(24)]
    assert statuses.count(200) == 10, f"{statuses}\n{cluster.server_errors()}"
    assert statuses.count(429) == 14, f"{statuses}\n{cluster.server_errors()}"
    used = set(cluster.upstreams()[-24:])
    assert used == {f"{cluster.a.address}:{APP_PORT}", f"{cluster.b.address}:{APP_PORT}"}


def test_ip_ranges_see_the_real_client_through_nginx(cluster: Cluster, user: User) -> None:
    _, from_here = make_key(user, "secret", allowed_ip_ranges=["127.0.0.1/32"])
    _, from_the_proxy = make_key(user, "secret", allowed_ip_ranges=[f"10.{SUBNET}.0.0/16"])
    statuses = []
    for _ in range(4):  # both hosts answer in turn
        statuses.append(get(cluster.url + "/api/v1/key", from_here)[0])
        statuses.append(get(cluster.url + "/api/v1/key", from_the_proxy)[0])
    # Once seen answering 500 under load: if it happens again, the hosts' logs say why.
    assert statuses == [200, 403] * 4, f"{statuses}\n{cluster.server_errors()}"


def test_host_a_killed_mid_load_nginx_fails_over_and_host_a_rejoins(
    cluster: Cluster, user: User
) -> None:
    _, token = make_key(user, "secret", rate_limit=10_000)
    results: list[tuple[float, int]] = []
    stopping = threading.Event()

    def load() -> None:
        while not stopping.is_set():
            results.append((time.monotonic(), get(cluster.url + "/api/v1/key", token)[0]))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(1)
        killed_at = time.monotonic()
        cluster.a.kill()
        time.sleep(3)
    finally:
        stopping.set()
        thread.join(timeout=30)
    after = [status for at, status in results if at > killed_at + 1]
    assert after and all(status == 200 for status in after), (
        f"{sorted(set(after))}\n{cluster.server_errors()}"
    )

    cluster.a.start()
    before = len(cluster.upstreams())

    def a_serves_again() -> bool:
        get(cluster.url + "/api/v1/key", token)
        return f"{cluster.a.address}:{APP_PORT}" in cluster.upstreams()[before:]

    wait_until(a_serves_again, 20, "nginx to send requests to host A again")


def post_json(url: str, body: Any, timeout: float = 10) -> int:
    """One POST of a JSON body on a new connection: the status (0 when nothing answered)."""
    request = urllib.request.Request(  # noqa: S310 - private addresses only
        url, data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    request.add_header("Connection", "close")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code
    except OSError:
        return 0


TASK_NAMES = ("respond_to_leaks", "deliver_mail")
PERIODIC_LINE = re.compile(r"Periodic tasks of (\S+): (enqueued by this|already enqueued)")
REPORTS = 50


def test_both_hosts_workers_share_the_queue_each_task_runs_once_periodic_jobs_once_a_minute(
    cluster: Cluster, user: User
) -> None:
    """50 leak reports through either host: 50 report tasks and 50 mail tasks, each run once,
    by the workers of both hosts; and each minute's periodic task enqueued by one worker only."""
    keys = [make_key(user, "secret", label=f"leaked {number}") for number in range(REPORTS)]
    for number, (_, token) in enumerate(keys):  # alternately through host A and host B
        host = cluster.a if number % 2 == 0 else cluster.b
        assert post_json(host.url + "/api/v1/leaked-keys", {"keys": [token]}) == 202
    ids = [key.id for key, _ in keys]

    def leak_events() -> int:
        db.session.expire_all()
        return db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.api_key_id.in_(ids), AuditEvent.action == "leaked")
        )

    def task_lines(host: Host) -> list[tuple[str, str]]:
        """("Executing" or "executed in", task name) for each of huey's lines about our tasks."""
        found = []
        for line in host.log("worker.log").splitlines():
            name = next((name for name in TASK_NAMES if name in line), None)
            kind = next((kind for kind in ("Executing", "executed in") if kind in line), None)
            if name and kind:
                found.append((kind, name))
        return found

    def settled() -> bool:
        """Every effect seen, the queue empty and no task in flight on either host."""
        lines = task_lines(cluster.a) + task_lines(cluster.b)
        started = sum(1 for kind, _ in lines if kind == "Executing")
        return (
            leak_events() >= REPORTS
            and len(cluster.a.mails()) + len(cluster.b.mails()) >= REPORTS
            and cluster.queued() == 0
            and started == len(lines) - started
        )

    wait_until(settled, 60, "the workers to run the report and mail tasks")

    # Each task ran exactly once in total: one audit event and one mail per reported key.
    assert leak_events() == REPORTS
    mails = [*cluster.a.mails(), *cluster.b.mails()]
    labels = sorted(
        re.search(rb"leaked \d+", path.read_bytes()).group().decode()  # type: ignore[union-attr]
        for path in mails
    )
    assert labels == sorted(f"leaked {number}" for number in range(REPORTS))
    ran = {host.name: task_lines(host) for host in (cluster.a, cluster.b)}
    done = [task for lines in ran.values() for kind, task in lines if kind == "executed in"]
    assert done.count("respond_to_leaks") == REPORTS
    assert done.count("deliver_mail") == REPORTS
    # Shared: each host's worker took some (Redis hands each task to the longest-waiting BRPOP).
    assert all(lines for lines in ran.values()), {name: len(v) for name, v in ran.items()}

    # The periodic task: each worker's scheduler looked at least once (the fixture waited for
    # it); every minute was claimed by one worker, and it ran once per claimed minute.
    def claims() -> dict[str, list[str]]:
        by_minute: dict[str, list[str]] = {}
        for host in (cluster.a, cluster.b):
            for minute, outcome in PERIODIC_LINE.findall(host.log("worker.log")):
                by_minute.setdefault(minute, []).append(f"{host.name} {outcome}")
        return by_minute

    # Both schedulers looked in the same minute (unless their first looks straddled a minute:
    # then their next looks, a minute later, do).
    wait_until(lambda: any(len(v) > 1 for v in claims().values()), 75, "a minute both saw")
    for minute, outcomes in claims().items():
        assert sum("enqueued by this" in outcome for outcome in outcomes) == 1, (minute, outcomes)

    def runs_match_claims() -> bool:
        runs = sum(
            h.log("worker.log").count("Every-minute jobs ran") for h in (cluster.a, cluster.b)
        )
        enqueued = sum("enqueued by this" in o for v in claims().values() for o in v)
        return runs == enqueued

    wait_until(runs_match_claims, 30, "one periodic run per claimed minute")
