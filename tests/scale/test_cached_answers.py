"""What the API keeps between requests (key rows, catalog answers) never outlives a change.

Two modes keep things: SQLite files with memory:// (per thread, thrown away when
`PRAGMA data_version` says another connection committed) and Redis (per process, under the
merchant's versions read by the request's one Redis call). Each test runs in both, with two app
instances on the same database (two processes, as far as caches go); on SQLite, also with a
plain sqlite3 connection and a `flask revoke-key` process writing behind the apps' backs.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from portal import create_app
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import ApiKey
from portal.store import service as store
from tests import conftest
from tests.api.conftest import recorded_statements
from tests.factories import add_product, bearer, make_key, make_user
from tests.scale.test_key_cache import round_trips

ROOT = Path(__file__).resolve().parents[2]
KEY_URL = "/api/v1/key"
LIST = "/api/v1/catalog/products"


def _sqlite_file(database_url: str) -> str:
    if not database_url.startswith("sqlite:///"):
        pytest.skip("the per-thread cache is for SQLite files (TEST_DATABASE_URL is not SQLite)")
    return database_url.removeprefix("sqlite:///")


@pytest.fixture(params=["sqlite", "redis"])
def mode(request: pytest.FixtureRequest, database_url: str) -> str:
    """Which cache: SQLite's data_version (memory:// limits) or Redis versions."""
    if request.param == "sqlite":
        _sqlite_file(database_url)
    return request.param


@pytest.fixture
def app_config(mode: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """memory:// limits on SQLite, or a private Redis."""
    if mode == "redis":
        return {"RATELIMIT_STORAGE_URI": request.getfixturevalue("redis_server").url}
    return {"RATELIMIT_STORAGE_URI": "memory://"}


@pytest.fixture
def other(database_url: str, app_config: dict[str, Any]) -> Iterator[FlaskClient]:
    """A second app instance on the same database (and Redis): another process's caches."""
    application = create_app(conftest.test_config(database_url, **app_config))

    @application.url_value_preprocessor
    def fresh_request_globals(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
        g.__dict__.clear()

    yield application.test_client()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def warm(client: FlaskClient, token: str, url: str = KEY_URL) -> Any:
    """Three requests (first sight, confirmation, cached), all 200; the last response."""
    for _ in range(3):
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.get_json()
    return response


def actor(user: User) -> keys.Actor:
    return keys.Actor(name=user.email, user_id=user.id)


# --- key rows --------------------------------------------------------------------------------


def revoke(key: ApiKey, user: User) -> None:
    keys.revoke_key(key, actor(user))


def rotate_now(key: ApiKey, user: User) -> None:
    keys.rotate_key(key, "now", actor(user))


def plan_off(_key: ApiKey, user: User) -> None:
    accounts.set_plan(user.email, "inactive")


@pytest.mark.parametrize(
    ("change", "code"),
    [(revoke, "api_key_revoked"), (rotate_now, "api_key_revoked"), (plan_off, "invalid_api_key")],
)
def test_a_key_change_in_one_instance_refuses_the_very_next_request_in_the_other(
    client: FlaskClient,
    other: FlaskClient,
    user: User,
    change: Callable[[ApiKey, User], None],
    code: str,
) -> None:
    key, token = make_key(user, "secret")
    warm(other, token)
    change(key, user)
    response = other.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == code


def test_an_edit_in_one_instance_applies_on_the_very_next_request_in_the_other(
    client: FlaskClient, other: FlaskClient, user: User
) -> None:
    key, token = make_key(user, "secret", rate_limit=600, scopes=["products:read"])
    warm(other, token)
    settings = keys.settings_of(key)
    settings.rate_limit = 7
    settings.scopes = ["orders:read"]
    keys.update_key(key, settings, actor(user))

    response = other.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["RateLimit-Limit"] == "7"
    assert response.get_json()["scopes"] == ["orders:read"]


def test_a_key_already_seen_on_sqlite_costs_one_pragma_and_no_lookup(
    app: Flask, client: FlaskClient, user: User, mode: str
) -> None:
    if mode != "sqlite":
        pytest.skip("Redis mode is counted in test_key_cache.py")
    _, token = make_key(user, "secret")
    # Listening to statements switches the lookup to SQLAlchemy's own connection: warm it there.
    with recorded_statements(app) as statements:
        warm(client, token)
        del statements[:]
        assert client.get(KEY_URL, headers=bearer(token)).status_code == 200
    assert statements == ["PRAGMA data_version"]


def test_sqlite_another_connection_revoking_is_seen_on_the_very_next_request(
    client: FlaskClient, user: User, database_url: str, mode: str
) -> None:
    if mode != "sqlite":
        pytest.skip("SQLite only")
    key, token = make_key(user, "secret")
    warm(client, token)
    with sqlite3.connect(_sqlite_file(database_url)) as connection:  # not SQLAlchemy's
        connection.execute(
            "UPDATE api_keys SET revoked_at = '2000-01-01 00:00:00.000000' WHERE id = ?",
            (key.id,),
        )
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "api_key_revoked"


def test_sqlite_flask_revoke_key_in_another_process_is_seen_on_the_very_next_request(
    client: FlaskClient, user: User, database_url: str, mode: str, tmp_path: Path
) -> None:
    if mode != "sqlite":
        pytest.skip("SQLite only (with Redis the CLI bumps the version: test_key_cache.py)")
    key, token = make_key(user, "secret")
    warm(client, token)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        "PORTAL_ENV": "development",
        # Its own instance folder: the task queue it writes (SQLite, under instance/) is not the
        # one the tests' huey reads when a test turns immediate mode off.
        "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "revoke-key", str(key.id)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "api_key_revoked"


# --- catalog answers -------------------------------------------------------------------------


def names(response: Any) -> list[str]:
    return [item["name"] for item in response.get_json()["data"]]


def test_a_warm_catalog_request_runs_no_catalog_query(
    app: Flask, client: FlaskClient, user: User, mode: str
) -> None:
    add_product(user, name="Enamel mug")
    _, token = make_key(user, "publishable")
    with round_trips(app) as counts, recorded_statements(app) as statements:
        warm(client, token, LIST)
        del statements[:]
        counts.update(sql=0, redis=0)
        response = client.get(LIST, headers=bearer(token))
    assert response.status_code == 200 and names(response) == ["Enamel mug"]
    if mode == "redis":
        assert counts == {"sql": 0, "redis": 1}  # the counter and both versions, one script
    else:
        assert statements == ["PRAGMA data_version"] and counts["redis"] == 0


def _price(user: User, product_id: int) -> None:
    store.update_product(store.Tenant(user.merchant_id), product_id, {"price": 2500})


def _unpublish(user: User, product_id: int) -> None:
    store.update_product(store.Tenant(user.merchant_id), product_id, {"published": False})


def _delete(user: User, product_id: int) -> None:
    store.delete_product(store.Tenant(user.merchant_id), product_id)


def _new_product(user: User, _product_id: int) -> None:
    add_product(user, name="Linen apron")


def _out_of_stock(user: User, product_id: int) -> None:
    store.update_product(store.Tenant(user.merchant_id), product_id, {"inventory": 0})


@pytest.mark.parametrize("change", [_price, _unpublish, _delete, _new_product, _out_of_stock])
def test_a_product_change_in_one_instance_shows_on_the_very_next_catalog_request_in_the_other(
    client: FlaskClient, other: FlaskClient, user: User, change: Callable[[User, int], None]
) -> None:
    product = add_product(user, name="Enamel mug", price=1800, inventory=3)
    add_product(user, name="Canvas tote")
    _, token = make_key(user, "publishable")
    before = warm(other, token, LIST).get_json()

    change(user, product.id)

    after = other.get(LIST, headers=bearer(token))
    assert after.status_code == 200
    assert after.get_json() != before
    expected = client.get(LIST, headers=bearer(token)).get_json()  # built fresh in this app
    assert after.get_json() == expected


def test_a_checkout_taking_the_last_item_shows_out_of_stock_on_the_next_request(
    client: FlaskClient, other: FlaskClient, user: User
) -> None:
    product = add_product(user, name="Enamel mug", inventory=1)
    _, token = make_key(user, "publishable")
    assert warm(other, token, LIST).get_json()["data"][0]["in_stock"] is True
    cart = client.post(
        "/api/v1/carts",
        json={"items": [{"product_id": product.id, "quantity": 1}]},
        headers=bearer(token),
    )
    assert cart.status_code == 201, cart.get_json()
    cart_id = cart.get_json()["id"]
    checkout = client.post(
        "/api/v1/checkouts",
        json={"cart_id": cart_id, "email": "shopper@example.com"},
        headers=bearer(token),
    )
    assert checkout.status_code == 201, checkout.get_json()

    assert other.get(LIST, headers=bearer(token)).get_json()["data"][0]["in_stock"] is False


def test_market_changes_and_market_scoped_keys(
    client: FlaskClient, other: FlaskClient, user: User
) -> None:
    us = accounts.add_market(user.merchant_id, "US", "United States")
    accounts.add_market(user.merchant_id, "EU", "Europe")
    mug = add_product(user, name="Enamel mug", markets=["US"])
    add_product(user, name="Canvas tote", markets=["EU"])
    _, everywhere = make_key(user, "publishable")
    _, us_only = make_key(user, "publishable", market_id=us.id)

    assert names(warm(other, everywhere, LIST)) == ["Enamel mug", "Canvas tote"]
    # The all-markets answer is kept: the US key must still get its own.
    assert names(warm(other, us_only, LIST)) == ["Enamel mug"]
    assert names(other.get(LIST, headers={**bearer(everywhere), "X-Site-ID": "EU"})) == [
        "Canvas tote"
    ]

    store.update_product(store.Tenant(user.merchant_id), mug.id, {"markets": ["EU"]})

    assert names(other.get(LIST, headers=bearer(us_only))) == []
    assert other.get(LIST, headers=bearer(everywhere)).get_json()["data"][0]["markets"] == ["EU"]


def test_another_merchant_never_gets_this_merchants_answer(
    client: FlaskClient, other: FlaskClient, user: User
) -> None:
    add_product(user, name="Enamel mug")
    _, mine = make_key(user, "publishable")
    intruder = make_user("intruder@other.test", "Other Shop")
    _, theirs = make_key(intruder, "publishable")
    assert names(warm(other, mine, LIST)) == ["Enamel mug"]
    assert names(warm(other, theirs, LIST)) == []
    assert names(other.get(LIST, headers=bearer(mine))) == ["Enamel mug"]


def test_sqlite_another_connection_changing_a_price_shows_on_the_very_next_request(
    other: FlaskClient, user: User, database_url: str, mode: str
) -> None:
    if mode != "sqlite":
        pytest.skip("SQLite only")
    product = add_product(user, name="Enamel mug", price=1800)
    _, token = make_key(user, "publishable")
    # `other`: each request its own app context and session, as when served.
    assert warm(other, token, LIST).get_json()["data"][0]["price"] == 1800
    with sqlite3.connect(_sqlite_file(database_url)) as connection:
        connection.execute("UPDATE products SET price = 999 WHERE id = ?", (product.id,))
    assert other.get(LIST, headers=bearer(token)).get_json()["data"][0]["price"] == 999


def test_redis_restarted_empty_never_brings_back_an_old_answer(
    app: Flask, client: FlaskClient, user: User, mode: str
) -> None:
    if mode != "redis":
        pytest.skip("Redis only")
    product = add_product(user, name="Enamel mug", price=1800)
    _, token = make_key(user, "publishable")
    warm(client, token, LIST)
    redis_client = app.extensions["portal_versions"]._redis()
    redis_client.flushall()  # as if Redis restarted empty (or evicted the versions)
    db.session.execute(
        db.update(type(product)).where(type(product).id == product.id).values(price=5)
    )
    db.session.commit()  # a Core UPDATE: no version bump at all
    # The version the gate finds missing is set to a new one, never one cached before.
    assert client.get(LIST, headers=bearer(token)).get_json()["data"][0]["price"] == 5


# --- the gate's one Redis call ---------------------------------------------------------------


def test_the_script_reply_is_parsed_whole_or_not_at_all() -> None:
    from portal.api.limits import ScriptError, _parse_reply

    reply = b"*4\r\n:3\r\n:59000\r\n$5\r\nt1.23\r\n$0\r\n\r\n"
    assert _parse_reply(reply) == [3, 59000, b"t1.23", b""]
    for cut in range(len(reply)):
        assert _parse_reply(reply[:cut]) is None  # incomplete: read more
    with pytest.raises(ScriptError, match="NOSCRIPT"):
        _parse_reply(b"-NOSCRIPT No matching script.\r\n")


def test_a_redis_that_forgot_the_script_is_counted_once_all_the_same(
    app: Flask, client: FlaskClient, user: User, mode: str
) -> None:
    if mode != "redis":
        pytest.skip("Redis only")
    _, token = make_key(user, "secret", rate_limit=50)
    warm(client, token)
    app.extensions["portal_versions"]._redis().script_flush()  # as after a Redis restart
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["RateLimit-Remaining"] == "46"  # 4 requests, each counted once
    assert not app.extensions["api_rate_limits"].degraded
