"""Several gunicorn workers share one rate limit through Redis, and survive Redis going away."""

from __future__ import annotations

import re
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask

from portal.accounts.models import User
from tests.conftest import make_key
from tests.scale.conftest import RedisServer, Server, ServerFactory, wait_until

KEY_URL = "/api/v1/key"
ACCESS_LINE = re.compile(r'"GET (?P<path>\S+) HTTP/1\.[01]" \d{3} .* pid=<?(?P<pid>\d+)')


def held_open_requests(server: Server, token: str, count: int) -> list[tuple[int, dict[str, str]]]:
    """`count` requests, each half-sent until a worker has accepted it, then completed.

    A sync worker reads a request to its end before it accepts another connection, so while
    these requests are half-sent every one of them sits in a different worker.
    """
    head = (
        f"GET {KEY_URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {token}\r\n"
    ).encode()
    connections = []
    try:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            connection.sendall(head)
            connections.append(connection)
            wait_until(lambda: _accept_backlog(server.port) == 0, 10, "a worker to accept")
        for connection in connections:
            connection.sendall(b"\r\n")
        return [_read_response(connection) for connection in connections]
    finally:
        for connection in connections:
            connection.close()


def _accept_backlog(port: int) -> int:
    """Connections waiting in the accept queue of the socket listening on 127.0.0.1:port."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:  # LISTEN
                return int(fields[4].split(":")[1], 16)  # rx_queue: the accept backlog
    raise AssertionError(f"nothing listens on port {port}")


def _read_response(connection: socket.socket) -> tuple[int, dict[str, str]]:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    pairs = (line.partition(":") for line in head[1:])
    headers = {name.lower(): value.strip() for name, _, value in pairs}
    return status, headers


def _served_by(server: Server, path: str) -> dict[int, int]:
    """How many requests for `path` each worker pid answered, from the access log."""
    counts: dict[int, int] = {}
    for match in ACCESS_LINE.finditer(server.log()):
        if match["path"] == path:
            pid = int(match["pid"])
            counts[pid] = counts.get(pid, 0) + 1
    return counts


@pytest.mark.postgres
@pytest.mark.redis
def test_three_workers_share_one_limit_through_redis(
    postgres_url: str, redis_url: str, user: User, serve: ServerFactory
) -> None:
    import redis

    key, token = make_key(user, "secret", rate_limit=10)
    prefix = f"scale-exact-limit-{secrets.token_hex(6)}"  # runs sharing one Redis never meet
    server = serve(workers=3, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_KEY_PREFIX=prefix)

    answers = held_open_requests(server, token, 3)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers += [
            (status, {k.lower(): v for k, v in headers.items()})
            for status, headers in pool.map(lambda _: server.get(KEY_URL, token), range(22))
        ]

    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 10, statuses
    assert statuses.count(429) == 15, statuses
    for status, headers in answers:
        assert headers["ratelimit-limit"] == "10"
        if status == 429:
            assert 0 < int(headers["retry-after"]) <= 60
    wait_until(lambda: sum(_served_by(server, KEY_URL).values()) == 25, 10, "the access log")
    assert len(_served_by(server, KEY_URL)) == 3  # every worker answered some of them
    with redis.Redis.from_url(redis_url) as client:
        assert int(client.get(f"{prefix}:api-key:{key.id}:10")) == 25


def _counter(redis_server: RedisServer, prefix: str, key_id: int, limit: int) -> int:
    with redis_server.client() as client:
        return int(client.get(f"{prefix}:api-key:{key_id}:{limit}") or 0)


def test_redis_down_keeps_serving_on_local_limits_and_recovers(
    app: Flask, user: User, serve: ServerFactory, redis_server: RedisServer
) -> None:
    key, token = make_key(user, "secret", rate_limit=1000)
    prefix = "scale-redis-down"
    server = serve(workers=2, RATELIMIT_STORAGE_URI=redis_server.url, RATELIMIT_KEY_PREFIX=prefix)

    # Held-open pairs put one request in each of the two workers.
    assert [status for status, _ in held_open_requests(server, token, 2)] == [200, 200]
    assert _counter(redis_server, prefix, key.id, 1000) == 2

    redis_server.kill()
    down = [answer for _ in range(4) for answer in held_open_requests(server, token, 2)]
    assert [status for status, _ in down] == [200] * 8
    assert all(headers["ratelimit-limit"] == "1000" for _, headers in down)
    wait_until(
        lambda: server.log().count("Rate limit storage unreachable") >= 2,
        10,
        "both workers' warnings in the log",
    )
    assert token not in server.log()

    redis_server.start()  # same port, empty: no persistence

    def both_workers_count_in_redis() -> bool:
        before = _counter(redis_server, prefix, key.id, 1000)
        statuses = [status for status, _ in held_open_requests(server, token, 2)]
        assert statuses == [200, 200]
        return _counter(redis_server, prefix, key.id, 1000) - before == 2

    # Each worker retries the storage after its back-off (2 s after one failure, doubling).
    wait_until(both_workers_count_in_redis, 70, "both workers to count in Redis again")
    wait_until(
        lambda: server.log().count("Rate limit storage recovered") == 2,
        10,
        "both workers' recovery in the log",
    )
