"""gunicorn.conf.py: a graceful stop writes every buffered call; the access log carries no key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.extensions import db
from portal.usage.models import UsageHourly
from tests.conftest import make_key
from tests.scale.conftest import RedisServer, ServerFactory, stop

KEY_URL = "/api/v1/key"


def test_a_graceful_stop_writes_every_buffered_call(
    app: Flask, user: User, serve: ServerFactory, redis_server: RedisServer
) -> None:
    key, token = make_key(user, "secret", rate_limit=1000)
    key_id = key.id
    # The periodic flusher never runs during the test: only the stop can write the calls.
    # Two workers need shared limits (memory:// with several workers is refused in production).
    server = serve(workers=2, USAGE_FLUSH_SECONDS="3600", RATELIMIT_STORAGE_URI=redis_server.url)
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: server.get(KEY_URL, token)[0], range(20)))
    assert statuses == [200] * 20
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(UsageHourly)) == 0

    stop(server.process)

    assert server.process.returncode == 0, server.log()
    assert "flushed its usage buffer" in server.log()
    calls = db.session.scalar(
        select(func.sum(UsageHourly.calls)).where(UsageHourly.api_key_id == key_id)
    )
    assert calls == 20


def test_the_access_log_has_no_keys_headers_or_query_strings(
    app: Flask, user: User, serve: ServerFactory
) -> None:
    _, token = make_key(user, "secret")
    server = serve(workers=1)
    server.get(KEY_URL, token)
    server.get(f"{KEY_URL}?api_key={token}", token)

    stop(server.process)

    log = server.log()
    assert log.count(f'"GET {KEY_URL} HTTP/1.1" 200') == 2, log
    assert token not in log
    assert "api_key=" not in log
    assert "Bearer" not in log
    assert "urllib" not in log  # the client's User-Agent header
