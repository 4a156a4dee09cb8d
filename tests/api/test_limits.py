"""Rate limits: per key with exact headers, per IP for failed authentication, Redis down."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.keys import tokens
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


def test_origin_refusals_show_the_counter_without_consuming_it(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "publishable", rate_limit=2, allowed_origins=["https://a.example"])
    for _ in range(3):
        refused = client.get(KEY_URL, headers=bearer(token, Origin="https://evil.example"))
        assert refused.status_code == 403
        assert _limit_headers(refused) == ("2", "2")
    assert _limit_headers(client.get(KEY_URL, headers=bearer(token))) == ("2", "1")


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
    # Even a right guess is refused from that address until the window ends.
    valid = client.get(KEY_URL, headers=bearer(secret_token), environ_base=guessing)
    assert valid.status_code == 429

    elsewhere = {"REMOTE_ADDR": "198.51.100.20"}
    assert client.get(KEY_URL, headers=unknown, environ_base=elsewhere).status_code == 401
    response = client.get(KEY_URL, headers=bearer(secret_token), environ_base=elsewhere)
    assert response.status_code == 200


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
