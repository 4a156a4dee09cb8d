"""`GET /healthz`: liveness at the application root, without the database or a key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

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
