"""Scopes at the gate: the registry decides, `require_scope` declares, the gate enforces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.api import auth
from portal.api.auth import ROUTE_SCOPES, AuthenticatedKey, public, require_scope
from portal.keys.scopes import SCOPES
from tests.api.conftest import bearer
from tests.conftest import make_key

KEY_URL = "/api/v1/key"
# Views under /api/v1 that need a key but no scope.
SCOPELESS = {"api.key_info"}


def _probe_with_scope(scope: str) -> Callable[[], dict[str, bool]]:
    def probe() -> dict[str, bool]:
        return {"ok": True}

    probe.required_scope = scope  # type: ignore[attr-defined]
    return probe


@pytest.fixture
def guarded(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make /api/v1/key require the given scope for this test."""
    return lambda scope: monkeypatch.setitem(
        app.view_functions, "api.key_info", _probe_with_scope(scope)
    )


def _key_types_for(scope: str) -> list[str]:
    return sorted(SCOPES[scope].key_types)


SCOPE_CASES = [(name, key_type) for name in SCOPES for key_type in _key_types_for(name)]


@pytest.mark.parametrize(("scope", "key_type"), SCOPE_CASES)
def test_a_key_with_the_scope_passes(
    client: FlaskClient, user: User, guarded: Callable[[str], None], scope: str, key_type: str
) -> None:
    guarded(scope)
    _, token = make_key(user, key_type, scopes=[scope])
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}


@pytest.mark.parametrize(("scope", "key_type"), SCOPE_CASES)
def test_a_key_without_the_scope_gets_403_naming_it(
    client: FlaskClient, user: User, guarded: Callable[[str], None], scope: str, key_type: str
) -> None:
    guarded(scope)
    others = [name for name in SCOPES if name != scope and key_type in SCOPES[name].key_types]
    _, token = make_key(user, key_type, scopes=others)
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "insufficient_scope"
    assert f'"{scope}"' in error["message"]
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="api", error="insufficient_scope", scope="{scope}"'
    )
    assert response.headers["RateLimit-Limit"] == "60"


@pytest.mark.parametrize("scope", [name for name, scope in SCOPES.items() if scope.secret_only])
def test_a_publishable_key_never_passes_a_secret_only_scope(
    client: FlaskClient,
    user: User,
    guarded: Callable[[str], None],
    publishable_token: str,
    scope: str,
) -> None:
    guarded(scope)
    response = client.get(KEY_URL, headers=bearer(publishable_token))
    assert response.status_code == 403
    assert "secret key" in response.get_json()["error"]["message"]


def test_key_type_is_checked_even_if_a_publishable_key_held_a_secret_scope() -> None:
    key = AuthenticatedKey(
        id=1,
        merchant_id=1,
        key_type="publishable",
        mode="live",
        scopes=frozenset({"orders:read"}),
        market_id=None,
        key_market_id=None,
        rate_limit=60,
        expires_at=None,
        allowed_origins=(),
        allowed_ip_ranges=(),
        legacy_header=False,
    )
    assert not key.has_scope("orders:read")
    assert not key.has_scope("no:such")


def test_require_scope_records_the_scope_and_returns_the_view() -> None:
    def gate_test_view() -> None:
        """A view for this test."""

    try:
        decorated = require_scope("orders:read")(gate_test_view)
        assert decorated is gate_test_view
        assert auth.required_scope_of(decorated) == "orders:read"
        assert ROUTE_SCOPES["api.gate_test_view"] == "orders:read"
    finally:
        ROUTE_SCOPES.pop("api.gate_test_view", None)


@pytest.mark.parametrize("name", ["orders:delete", "catalog", "", "Catalog:Read"])
def test_require_scope_refuses_unknown_scopes_at_import_time(name: str) -> None:
    with pytest.raises(ValueError, match="Unknown scope"):
        require_scope(name)


def test_public_marks_a_view() -> None:
    def document() -> None:
        """A view for this test."""

    assert public(document) is document
    assert auth.is_public(document)
    assert not auth.is_public(lambda: None)


def test_a_public_view_needs_no_key(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    @public
    def document() -> dict[str, str]:
        return {"openapi": "3.1.0"}

    monkeypatch.setitem(app.view_functions, "api.key_info", document)
    response = client.get(KEY_URL, headers={"Origin": "https://docs.example.com"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://docs.example.com"


def _api_views(app: Flask) -> dict[str, Any]:
    return {
        rule.endpoint: app.view_functions[rule.endpoint]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
    }


def test_every_api_route_declares_a_scope_or_is_public(app: Flask) -> None:
    for endpoint, view in _api_views(app).items():
        scope = auth.required_scope_of(view)
        assert scope in SCOPES or auth.is_public(view) or endpoint in SCOPELESS, endpoint
        if scope is not None:
            assert ROUTE_SCOPES.get(endpoint) == scope, endpoint
