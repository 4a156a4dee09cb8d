"""Rate limits: per key with exact headers, per IP for failed authentication, Redis down."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.api import limits
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys
from portal.keys import tokens
from portal.usage.models import UsageHourly
from tests.api.conftest import bearer
from tests.conftest import make_key

KEY_URL = "/api/v1/key"


def _limit_headers(response: Any) -> tuple[str, str]:
    return response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]


def test_rate_limits_are_per_key_with_exact_headers(client: FlaskClient, user: User) -> None:
    _, first = make_key(user, "secret", rate_limit=3)
    _, second = make_key(user, "secret", rate_limit=3)
    remaining = []
    for _ in range(3):
        response = client.get(KEY_URL, headers=bearer(first))
        assert response.status_code == 200
        assert "Retry-After" not in response.headers
        remaining.append(_limit_headers(response))
    assert remaining == [("3", "2"), ("3", "1"), ("3", "0")]

    refused = client.get(KEY_URL, headers=bearer(first))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert _limit_headers(refused) == ("3", "0")
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"]

    other = client.get(KEY_URL, headers=bearer(second))
    assert other.status_code == 200
    assert _limit_headers(other) == ("3", "2")


def test_rate_limit_reset_is_seconds_not_an_epoch(client: FlaskClient, secret_token: str) -> None:
    response = client.get(KEY_URL, headers=bearer(secret_token))
    assert 0 < int(response.headers["RateLimit-Reset"]) <= 60


def test_the_key_limit_is_the_keys_own(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "publishable", rate_limit=10_000)
    response = client.get(KEY_URL, headers=bearer(token))
    assert _limit_headers(response) == ("10000", "9999")


def test_refused_scopes_count_and_carry_headers(
    client: FlaskClient, user: User, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def probe() -> dict[str, bool]:
        return {"ok": True}

    probe.required_scope = "orders:write"  # type: ignore[attr-defined]
    monkeypatch.setitem(app.view_functions, "api.key_info", probe)
    _, token = make_key(user, "secret", rate_limit=2)
    statuses = [client.get(KEY_URL, headers=bearer(token)).status_code for _ in range(3)]
    assert statuses == [403, 403, 429]


def test_origin_refusals_count_against_their_own_allowance_not_the_keys(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "publishable", rate_limit=2, allowed_origins=["https://a.example"])
    forged = bearer(token, Origin="https://evil.example")
    refusals = [client.get(KEY_URL, headers=forged) for _ in range(3)]
    assert [response.status_code for response in refusals] == [403, 403, 429]
    assert [_limit_headers(response) for response in refusals] == [
        ("2", "1"),
        ("2", "0"),
        ("2", "0"),
    ]
    assert refusals[2].get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(refusals[2].headers["Retry-After"]) <= 60
    # The storefront's own allowance is untouched.
    real = client.get(KEY_URL, headers=bearer(token, Origin="https://a.example"))
    assert real.status_code == 200
    assert _limit_headers(real) == ("2", "1")


def _recorded_calls(app: Flask, key_id: int) -> int:
    """The key's calls as its usage page counts them, after the recorder's flush."""
    app.extensions["usage_recorder"].flush()
    total = db.session.scalar(
        select(func.sum(UsageHourly.calls)).where(UsageHourly.api_key_id == key_id)
    )
    return int(total or 0)


def test_forged_origins_are_throttled_and_cannot_flood_the_keys_usage(
    app: Flask, client: FlaskClient, user: User
) -> None:
    key, token = make_key(
        user, "publishable", rate_limit=5, allowed_origins=["https://shop.example.com"]
    )
    attacker = {"REMOTE_ADDR": "203.0.113.66"}
    forged = bearer(token, Origin="https://shop.example.com.evil.net")
    responses = [client.get(KEY_URL, headers=forged, environ_base=attacker) for _ in range(300)]
    codes = [response.get_json()["error"]["code"] for response in responses]
    assert codes == ["origin_not_allowed"] * 5 + ["rate_limited"] * 295
    for response in responses:
        assert not [name for name, _ in response.headers.items() if name.startswith("Access-")]
    assert _recorded_calls(app, key.id) == 5

    # A shopper on the real storefront, from the attacker's address or another, is served.
    shop = bearer(token, Origin="https://shop.example.com")
    for address in ("203.0.113.66", "198.51.100.4"):
        response = client.get(KEY_URL, headers=shop, environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 200
    assert _recorded_calls(app, key.id) == 7


def test_calls_from_outside_the_ip_ranges_are_throttled_per_client_ip(
    app: Flask, client: FlaskClient, user: User
) -> None:
    key, token = make_key(user, "secret", rate_limit=5, allowed_ip_ranges=["203.0.113.0/24"])
    outside = {"REMOTE_ADDR": "198.51.100.9"}
    responses = [
        client.get(KEY_URL, headers=bearer(token), environ_base=outside) for _ in range(40)
    ]
    codes = [response.get_json()["error"]["code"] for response in responses]
    assert codes == ["ip_not_allowed"] * 5 + ["rate_limited"] * 35
    assert _recorded_calls(app, key.id) == 5
    # Another outside address has its own allowance; the key's own servers are unaffected.
    other = client.get(KEY_URL, headers=bearer(token), environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert other.get_json()["error"]["code"] == "ip_not_allowed"
    inside = {"REMOTE_ADDR": "203.0.113.10"}
    response = client.get(KEY_URL, headers=bearer(token), environ_base=inside)
    assert response.status_code == 200
    assert _limit_headers(response) == ("5", "4")


def test_publishable_keys_are_limited_per_key_and_client_ip(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "publishable", rate_limit=2)
    scraper = {"REMOTE_ADDR": "203.0.113.50"}
    statuses = [
        client.get(KEY_URL, headers=bearer(token), environ_base=scraper).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 429, 429, 429]
    # A shopper elsewhere still has the whole allowance, with or without an Origin.
    shopper = {"REMOTE_ADDR": "198.51.100.77"}
    response = client.get(KEY_URL, headers=bearer(token), environ_base=shopper)
    assert response.status_code == 200
    assert _limit_headers(response) == ("2", "1")
    browser = bearer(token, Origin="https://shop.example.com")
    response = client.get(KEY_URL, headers=browser, environ_base=shopper)
    assert _limit_headers(response) == ("2", "0")


def test_secret_keys_are_limited_per_key_from_every_address(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "secret", rate_limit=2)
    addresses = ["203.0.113.1", "198.51.100.2", "192.0.2.3"]
    responses = [
        client.get(KEY_URL, headers=bearer(token), environ_base={"REMOTE_ADDR": address})
        for address in addresses
    ]
    assert [response.status_code for response in responses] == [200, 200, 429]
    assert [_limit_headers(response) for response in responses] == [
        ("2", "1"),
        ("2", "0"),
        ("2", "0"),
    ]


@pytest.fixture
def app_config() -> dict[str, Any]:
    """A small failure limit so the test stays short."""
    return {"API_AUTH_FAILURE_LIMIT": "3/minute"}


def test_failed_authentications_are_limited_per_client_ip(
    client: FlaskClient, secret_token: str
) -> None:
    guessing = {"REMOTE_ADDR": "203.0.113.5"}
    unknown = bearer(tokens.generate_token("secret"))
    attempts = [
        client.get(KEY_URL, headers=headers, environ_base=guessing)
        for headers in (unknown, {}, bearer("sk_live_typo"))
    ]
    assert [response.status_code for response in attempts] == [401, 401, 401]

    blocked = client.get(KEY_URL, headers=unknown, environ_base=guessing)
    assert blocked.status_code == 429
    assert blocked.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    # A valid key from that address is served all the same.
    valid = client.get(KEY_URL, headers=bearer(secret_token), environ_base=guessing)
    assert valid.status_code == 200

    elsewhere = {"REMOTE_ADDR": "198.51.100.20"}
    assert client.get(KEY_URL, headers=unknown, environ_base=elsewhere).status_code == 401
    response = client.get(KEY_URL, headers=bearer(secret_token), environ_base=elsewhere)
    assert response.status_code == 200


def test_a_valid_key_is_never_refused_for_failures_from_its_address(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "publishable", rate_limit=100)
    office = {"REMOTE_ADDR": "198.51.100.200"}
    guesses = [
        client.get(KEY_URL, headers=bearer(tokens.generate_token("secret")), environ_base=office)
        for _ in range(30)
    ]
    assert [response.status_code for response in guesses] == [401] * 3 + [429] * 27
    for _ in range(3):
        response = client.get(KEY_URL, headers=bearer(token), environ_base=office)
        assert response.status_code == 200
        response = client.get(
            KEY_URL, headers=bearer(tokens.generate_token("secret")), environ_base=office
        )
        assert response.status_code == 429


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_revoked_and_expired_keys_do_not_lock_their_address(
    client: FlaskClient, user: User, state: str
) -> None:
    key, old_token = make_key(user, "publishable")
    if state == "revoked":
        keys.revoke_key(key, keys.Actor(name=user.email))
    else:
        key.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    storefront = {"REMOTE_ADDR": "203.0.113.80"}
    responses = [
        client.get(KEY_URL, headers=bearer(old_token), environ_base=storefront) for _ in range(10)
    ]
    assert {response.get_json()["error"]["code"] for response in responses} == {f"api_key_{state}"}
    # The address's failure allowance is whole: an unknown key is a 401, not yet a 429.
    unknown = bearer(tokens.generate_token("publishable"))
    assert client.get(KEY_URL, headers=unknown, environ_base=storefront).status_code == 401


def test_successful_requests_do_not_use_up_the_failure_limit(
    client: FlaskClient, secret_token: str
) -> None:
    for _ in range(5):
        assert client.get(KEY_URL, headers=bearer(secret_token)).status_code == 200


class TestRedisDown:
    """RATELIMIT_STORAGE_URI points at a closed port: the API keeps serving on local counters."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"}

    def test_keeps_serving_and_logs_a_warning(
        self, client: FlaskClient, user: User, caplog: pytest.LogCaptureFixture
    ) -> None:
        _, token = make_key(user, "secret", rate_limit=3)
        with caplog.at_level(logging.WARNING):
            responses = [client.get(KEY_URL, headers=bearer(token)) for _ in range(3)]
        assert [response.status_code for response in responses] == [200, 200, 200]
        assert [_limit_headers(response) for response in responses] == [
            ("3", "2"),
            ("3", "1"),
            ("3", "0"),
        ]
        assert any("storage unreachable" in record.getMessage() for record in caplog.records)
        assert token not in caplog.text
        # Per-process limits still hold.
        assert client.get(KEY_URL, headers=bearer(token)).status_code == 429

    def test_failed_authentication_is_still_a_401(self, client: FlaskClient) -> None:
        response = client.get(KEY_URL, headers=bearer(tokens.generate_token("secret")))
        assert response.status_code == 401


@pytest.fixture(params=["memory", "redis", "limits"])
def store(request: pytest.FixtureRequest, app: Flask) -> Any:
    """Each kind of counter store the gate may run on (Redis: the TEST_REDIS_URL server)."""
    if request.param == "memory":
        return limits.MemoryStore()
    if request.param == "limits":
        return limits.LimitsStore()  # through Flask-Limiter's own storage (memory here)
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("needs TEST_REDIS_URL (Redis); .ci/run sets it")
    return limits.RedisStore(url)


def test_every_store_counts_one_window_and_stops_at_the_limit_when_asked(store: Any) -> None:
    name = f"test-store-{secrets.token_hex(6)}"
    plain = limits.Counter(f"{name}:plain", 2, 60)
    stopping = limits.Counter(f"{name}:stopping", 2, 60)
    for counter, stop_at_limit in ((plain, False), (stopping, True)):
        windows = [store.hit(counter, stop_at_limit) for _ in range(4)]
        assert [window.allowed for window in windows] == [True, True, False, False]
        assert [window.remaining for window in windows] == [1, 0, 0, 0]
        assert all(window.limit == 2 and 0 < window.reset_in <= 60 for window in windows)
    if isinstance(store, limits.RedisStore):
        import redis

        with redis.Redis.from_url(store.uri) as client:
            assert int(client.get(plain.key)) == 4  # every request counted (the exact test)
            assert int(client.get(stopping.key)) == 2  # a flood does not inflate it
            assert 0 < client.pttl(stopping.key) <= 60_000
            client.delete(plain.key, stopping.key)


@pytest.mark.parametrize(
    ("case", "counted"),
    [
        ("secret key", ["api-key"]),
        ("publishable key", ["api-key"]),
        ("forged origin", ["api-refused"]),
        ("outside the ip ranges", ["api-refused"]),
        ("unknown key", ["api-auth-failures"]),
        ("malformed key", ["api-auth-failures"]),
        ("revoked key", []),
    ],
)
def test_each_request_makes_at_most_one_limiter_storage_call(
    app: Flask,
    client: FlaskClient,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    counted: list[str],
) -> None:
    counters = app.extensions["api_rate_limits"]
    shared = counters._shared
    calls: list[str] = []
    real_hit = shared.hit

    def hit(
        counter: limits.Counter, stop_at_limit: bool, version_key: str | None = None
    ) -> limits.RateWindow:
        calls.append(counter.key.split(":")[1])
        return real_hit(counter, stop_at_limit, version_key)

    monkeypatch.setattr(shared, "hit", hit)
    headers: dict[str, str] = {}
    if case == "secret key":
        token = make_key(user, "secret")[1]
    elif case == "publishable key":
        token = make_key(user, "publishable")[1]
    elif case == "forged origin":
        token = make_key(user, "publishable", allowed_origins=["https://a.example"])[1]
        headers["Origin"] = "https://evil.example"
    elif case == "outside the ip ranges":
        token = make_key(user, "secret", allowed_ip_ranges=["203.0.113.0/24"])[1]
    elif case == "unknown key":
        token = tokens.generate_token("secret")
    elif case == "malformed key":
        token = "sk_live_mistyped"
    else:
        key, token = make_key(user, "secret")
        keys.revoke_key(key, keys.Actor(name=user.email))
    client.get(KEY_URL, headers=bearer(token, **headers))
    assert calls == counted
