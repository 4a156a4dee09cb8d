"""`GET /healthz`: liveness at the application root, without the database or a key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from tests.api.conftest import bearer


def test_healthz_answers_ok_without_the_database(
    client: FlaskClient, sql_statements: Callable[[], Any]
) -> None:
    with sql_statements() as statements:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == []


def test_healthz_ignores_keys_and_rate_limits(client: FlaskClient) -> None:
    for _ in range(50):
        response = client.get("/healthz", headers=bearer("sk_live_nonsense"))
        assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers


@pytest.mark.parametrize("path", ["/api/v1/healthz", "/api/healthz"])
def test_healthz_is_only_at_the_root(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_healthz_is_answered_in_front_of_flask(app: Flask, client: FlaskClient) -> None:
    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append("flask"))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in response.headers
    head = client.head("/healthz")
    assert head.status_code == 200 and head.get_data() == b""
    assert seen == []  # no request context, no hook
    assert client.post("/healthz").status_code == 405  # Flask's route answers the rest
    assert seen == ["flask"]


def test_healthz_in_production_carries_hsts(database_url: str) -> None:
    from portal import create_app
    from tests.conftest import test_config

    production = create_app(test_config(database_url, PORTAL_ENV="testing"))
    assert "Strict-Transport-Security" not in production.test_client().get("/healthz").headers
    production = create_app(
        test_config(
            database_url, PORTAL_ENV="production", SECRET_KEY="s" * 32, API_KEY_PEPPER="p" * 32
        )
    )
    response = production.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    with production.app_context():
        db.engine.dispose()
