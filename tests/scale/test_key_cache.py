"""The gate on Redis: one round trip per request for a key already seen, no SQL, and every
change to a key or plan refused or applied on the very next request in another process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import event

from portal import create_app
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import ApiKey
from tests import conftest
from tests.factories import add_product, bearer, make_key
from tests.scale.conftest import RedisServer

KEY_URL = "/api/v1/key"


@pytest.fixture
def app_config(redis_server: RedisServer) -> dict[str, Any]:
    """This module's apps count in a private Redis."""
    return {"RATELIMIT_STORAGE_URI": redis_server.url}


@pytest.fixture
def other_host(database_url: str, app_config: dict[str, Any]) -> Iterator[FlaskClient]:
    """A second app on the same database and Redis: another process, as far as caches go."""
    application = create_app(conftest.test_config(database_url, **app_config))

    @application.url_value_preprocessor
    def fresh_request_globals(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
        g.__dict__.clear()

    yield application.test_client()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@contextmanager
def round_trips(app: Flask) -> Iterator[dict[str, int]]:
    """Count this thread's SQL statements and Redis round trips inside the block."""
    counts = {"sql": 0, "redis": 0}
    thread = threading.get_ident()
    engine = db.engine

    def statement(*_args: Any) -> None:
        if threading.get_ident() == thread:
            counts["sql"] += 1

    real_send = redis.connection.AbstractConnection.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        if threading.get_ident() == thread:
            counts["redis"] += 1
        real_send(self, command, check_health)

    event.listen(engine, "before_cursor_execute", statement)
    redis.connection.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        redis.connection.AbstractConnection.send_packed_command = real_send  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", statement)


def warm(client: FlaskClient, token: str) -> None:
    """Two requests: the first reads the row, the second confirms its version."""
    for _ in range(2):
        assert client.get(KEY_URL, headers=bearer(token)).status_code == 200


def test_a_key_already_seen_costs_one_redis_round_trip_and_no_sql(
    app: Flask, client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "secret", label="Stock sync " + "long label " * 6)
    warm(client, token)

    for _ in range(3):
        with round_trips(app) as counts:
            response = client.get(KEY_URL, headers=bearer(token))
        assert response.status_code == 200
        assert counts == {"sql": 0, "redis": 1}

    publishable = make_key(user, "publishable")[1]
    warm(client, publishable)
    with round_trips(app) as counts:
        response = client.get(KEY_URL, headers=bearer(publishable))
    assert response.status_code == 200
    assert counts == {"sql": 0, "redis": 1}
    limit = int(response.headers["RateLimit-Limit"])
    assert response.headers["RateLimit-Remaining"] == str(limit - 3)  # each request counted once


def test_a_key_seen_for_the_first_time_reads_its_row_once(
    app: Flask, client: FlaskClient, user: User
) -> None:
    warm(client, make_key(user, "secret", label="Opens the connection")[1])
    _, token = make_key(user, "secret")
    with round_trips(app) as first:
        assert client.get(KEY_URL, headers=bearer(token)).status_code == 200
    with round_trips(app) as second:
        response = client.get(KEY_URL, headers=bearer(token))
    assert first == {"sql": 1, "redis": 1}
    # The row read first was read before any version: the second request confirms it.
    assert second == {"sql": 1, "redis": 1}
    limit = int(response.headers["RateLimit-Limit"])
    assert response.headers["RateLimit-Remaining"] == str(limit - 2)  # each request counted once


Change = Callable[[ApiKey, User], None]


def revoke(key: ApiKey, user: User) -> None:
    keys.revoke_key(key, keys.Actor(name=user.email, user_id=user.id))


def rotate_now(key: ApiKey, user: User) -> None:
    keys.rotate_key(key, "now", keys.Actor(name=user.email, user_id=user.id))


def deactivate_plan(_key: ApiKey, user: User) -> None:
    accounts.set_plan(user.email, "inactive")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (revoke, "api_key_revoked"),
        (rotate_now, "api_key_revoked"),
        (deactivate_plan, "invalid_api_key"),
    ],
)
def test_a_change_through_one_host_refuses_the_very_next_request_on_another(
    client: FlaskClient, other_host: FlaskClient, user: User, change: Change, code: str
) -> None:
    key, token = make_key(user, "secret")
    warm(other_host, token)
    warm(other_host, token)  # cached and confirmed there

    change(key, user)  # in this app: its commit moves the merchant's version in Redis

    response = other_host.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == code


def test_an_edit_through_one_host_applies_on_the_very_next_request_on_another(
    client: FlaskClient, other_host: FlaskClient, user: User
) -> None:
    key, token = make_key(user, "secret", rate_limit=600)
    warm(other_host, token)
    settings = keys.settings_of(key)
    settings.rate_limit = 7
    keys.update_key(key, settings, keys.Actor(name=user.email, user_id=user.id))

    response = other_host.get(KEY_URL, headers=bearer(token))

    assert response.status_code == 200
    assert response.headers["RateLimit-Limit"] == "7"
    assert response.headers["RateLimit-Remaining"] == "6"  # counted once, on the new limit


def test_reactivating_a_plan_applies_on_the_very_next_request(
    client: FlaskClient, other_host: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "secret")
    accounts.set_plan(user.email, "inactive")
    for _ in range(3):
        assert other_host.get(KEY_URL, headers=bearer(token)).status_code == 401

    accounts.set_plan(user.email, "active")

    assert other_host.get(KEY_URL, headers=bearer(token)).status_code == 200


def test_with_redis_down_every_request_reads_the_database(
    app: Flask, client: FlaskClient, redis_server: RedisServer, user: User
) -> None:
    key, token = make_key(user, "secret")
    warm(client, token)
    redis_server.kill()
    with round_trips(app) as counts:
        assert client.get(KEY_URL, headers=bearer(token)).status_code == 200
    assert counts["sql"] == 1

    db.session.execute(
        db.update(ApiKey).where(ApiKey.id == key.id).values(revoked_at=db.func.now())
    )
    db.session.commit()  # no Redis to bump: the gate must read the row anyway

    assert client.get(KEY_URL, headers=bearer(token)).status_code == 401


def test_the_catalog_of_a_key_already_seen_still_answers(client: FlaskClient, user: User) -> None:
    add_product(user, name="Enamel mug " + "x" * 60)
    _, token = make_key(user, "publishable")
    warm(client, token)
    response = client.get("/api/v1/catalog/products", headers=bearer(token))
    assert response.status_code == 200
    assert [item["name"] for item in response.get_json()["data"]] == ["Enamel mug " + "x" * 60]
