"""The gate's authentication: the SPEC's 401 and 403 rows, the legacy header, markets, SQL cost."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.api.auth import LEGACY_SUNSET_AT
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys
from portal.keys import tokens
from portal.keys.models import AuditEvent
from tests.api.conftest import bearer, legacy
from tests.conftest import make_key

KEY_URL = "/api/v1/key"


def error_of(response: Any) -> dict[str, str]:
    """The `error` object of a JSON error response."""
    assert response.is_json, response.get_data(as_text=True)
    return response.get_json()["error"]


def with_bad_checksum(token: str) -> str:
    """The token with its checksum's last character changed."""
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


# The SPEC's 401 rows that need no stored key: (headers, code).
UNAUTHENTICATED = {
    "no key": ({}, "missing_api_key"),
    "empty bearer": ({"Authorization": "Bearer "}, "invalid_api_key"),
    "basic scheme": ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_api_key"),
    "malformed": (bearer("sk_live_short"), "invalid_api_key"),
    "unknown prefix": (bearer("xx_live_" + "A" * 38), "invalid_api_key"),
    "legacy malformed": (legacy("not-a-key"), "invalid_api_key"),
}


@pytest.mark.parametrize(
    ("headers", "code"), list(UNAUTHENTICATED.values()), ids=list(UNAUTHENTICATED)
)
def test_requests_without_a_usable_key_get_401(
    client: FlaskClient, headers: dict[str, str], code: str
) -> None:
    response = client.get(KEY_URL, headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "RateLimit-Limit" not in response.headers


@pytest.mark.parametrize(
    ("authorization", "says"),
    [
        ("{token}", "no scheme"),
        ("shortsecret", "no scheme"),
        ("Basic dXNlcjpwYXNz", '"Basic"'),
        ("Token {token}", '"Token"'),
        ("Bearer", "no key after Bearer"),
        ("Bearer   ", "no key after Bearer"),
    ],
)
def test_a_malformed_authorization_header_says_how_to_send_the_key(
    client: FlaskClient, secret_token: str, authorization: str, says: str
) -> None:
    response = client.get(
        KEY_URL, headers={"Authorization": authorization.format(token=secret_token)}
    )
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "invalid_api_key"
    assert says in error["message"]
    assert "Authorization: Bearer <key>" in error["message"]
    assert "mistyped" not in error["message"]
    assert secret_token not in response.get_data(as_text=True)
    assert "shortsecret" not in error["message"]


def test_an_odd_scheme_is_not_echoed_back(client: FlaskClient) -> None:
    response = client.get(KEY_URL, headers={"Authorization": "<script>alert(1)</script> x"})
    message = error_of(response)["message"]
    assert "script" not in message
    assert "Authorization: Bearer <key>" in message


def test_bad_checksum_is_invalid_and_never_reaches_the_database(
    client: FlaskClient, secret_token: str, sql_statements: Callable[[], Any]
) -> None:
    forged = with_bad_checksum(secret_token)
    assert tokens.parse_token(forged) is None
    with sql_statements() as statements:
        response = client.get(KEY_URL, headers=bearer(forged))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"
    assert statements == []


def test_a_valid_request_runs_exactly_one_select_and_writes_nothing(
    client: FlaskClient, secret_token: str, sql_statements: Callable[[], Any]
) -> None:
    with sql_statements() as statements:
        response = client.get(KEY_URL, headers=bearer(secret_token))
    assert response.status_code == 200
    # On a SQLite file the gate first asks whether the database changed (a read, see
    # lookup.LocalCache); the key's row comes from the one indexed select.
    lookups = [s for s in statements if s != "PRAGMA data_version"]
    assert len(lookups) == 1, statements
    assert len(statements) == (2 if db.engine.dialect.name == "sqlite" else 1), statements
    assert lookups[0].lstrip().upper().startswith("SELECT")
    assert "key_hash" in lookups[0]


def test_x_site_id_is_resolved_in_the_same_single_select(
    client: FlaskClient, user: User, sql_statements: Callable[[], Any]
) -> None:
    accounts.add_market(user.merchant_id, "US", "United States")
    _, token = make_key(user, "secret")
    with sql_statements() as statements:
        response = client.get(KEY_URL, headers=bearer(token, **{"X-Site-ID": "US"}))
    assert response.status_code == 200
    assert len([s for s in statements if s != "PRAGMA data_version"]) == 1, statements


def test_unknown_well_formed_key_is_invalid(client: FlaskClient, user: User) -> None:
    token = tokens.generate_token("secret")
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"


def test_inactive_plan_is_byte_identical_to_an_unknown_key(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "secret")
    unknown = client.get(KEY_URL, headers=bearer(tokens.generate_token("secret")))
    accounts.set_plan(user.email, "inactive")
    inactive = client.get(KEY_URL, headers=bearer(token))
    assert inactive.status_code == unknown.status_code == 401
    assert inactive.get_data() == unknown.get_data()
    assert sorted(inactive.headers.items()) == sorted(unknown.headers.items())


def test_inactive_plan_hides_a_revoked_key_too(client: FlaskClient, user: User) -> None:
    key, token = make_key(user, "secret")
    keys.revoke_key(key, keys.Actor(name=user.email))
    accounts.set_plan(user.email, "inactive")
    response = client.get(KEY_URL, headers=bearer(token))
    assert error_of(response)["code"] == "invalid_api_key"


def test_revoked_key_fails_on_its_very_next_request(client: FlaskClient, user: User) -> None:
    key, token = make_key(user, "secret")
    assert client.get(KEY_URL, headers=bearer(token)).status_code == 200
    keys.revoke_key(key, keys.Actor(name=user.email))
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 401
    assert error_of(response)["code"] == "api_key_revoked"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_rotated_key_works_during_its_grace_period_then_the_new_one(
    client: FlaskClient, user: User
) -> None:
    key, old_token = make_key(user, "secret")
    _, new_token = keys.rotate_key(key, "1h", keys.Actor(name=user.email))
    assert client.get(KEY_URL, headers=bearer(old_token)).status_code == 200
    assert client.get(KEY_URL, headers=bearer(new_token)).status_code == 200
    key.revoked_at = utcnow() - timedelta(seconds=1)  # the grace period ends
    db.session.commit()
    assert error_of(client.get(KEY_URL, headers=bearer(old_token)))["code"] == "api_key_revoked"


def test_expired_key_is_refused(client: FlaskClient, user: User) -> None:
    key, token = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    key.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get(KEY_URL, headers=bearer(token))
    assert response.status_code == 401
    assert error_of(response)["code"] == "api_key_expired"


def test_edited_scopes_apply_on_the_next_request(
    app: Flask, client: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def probe() -> dict[str, bool]:
        return {"ok": True}

    probe.required_scope = "orders:write"  # type: ignore[attr-defined]
    monkeypatch.setitem(app.view_functions, "api.key_info", probe)
    key, token = make_key(user, "secret", scopes=["orders:read"])
    assert client.get(KEY_URL, headers=bearer(token)).status_code == 403
    settings = keys.settings_of(key)
    settings.scopes = ["orders:read", "orders:write"]
    keys.update_key(key, settings, keys.Actor(name=user.email))
    assert client.get(KEY_URL, headers=bearer(token)).status_code == 200
    settings.scopes = ["orders:read"]
    keys.update_key(key, settings, keys.Actor(name=user.email))
    assert client.get(KEY_URL, headers=bearer(token)).status_code == 403


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(
    client: FlaskClient, secret_token: str, scheme: str
) -> None:
    response = client.get(KEY_URL, headers={"Authorization": f"{scheme}  {secret_token} "})
    assert response.status_code == 200


def test_bearer_responses_carry_no_deprecation(client: FlaskClient, secret_token: str) -> None:
    response = client.get(KEY_URL, headers=bearer(secret_token))
    for header in ("Deprecation", "Sunset", "Link"):
        assert header not in response.headers


@pytest.mark.parametrize("status", [200, 401])
def test_legacy_header_works_and_is_deprecated(
    client: FlaskClient, secret_token: str, status: int
) -> None:
    token = secret_token if status == 200 else tokens.generate_token("secret")
    response = client.get(KEY_URL, headers=legacy(token))
    assert response.status_code == status
    assert response.headers["Deprecation"].startswith("@")
    assert int(response.headers["Deprecation"][1:]) < LEGACY_SUNSET_AT.timestamp()
    assert response.headers["Sunset"] == "Tue, 30 Nov 2027 00:00:00 GMT"
    assert response.headers["Link"].startswith("<")
    assert response.headers["Link"].startswith('</api/v1/openapi.json>; rel="deprecation"')


def test_bearer_wins_over_the_legacy_header(client: FlaskClient, secret_token: str) -> None:
    headers = bearer(secret_token, **{"X-API-Key": "sk_live_garbage"})
    response = client.get(KEY_URL, headers=headers)
    assert response.status_code == 200
    assert "Deprecation" not in response.headers


# --- markets: X-Site-ID narrows a tenant-level key; a market key sees only its market.


@pytest.fixture
def markets(user: User) -> dict[str, Any]:
    """US and EU markets of the user's merchant, and another merchant's market."""
    other = accounts.register(accounts.NewAccount("x@other.test", "correct horse battery", "X"))
    return {
        "US": accounts.add_market(user.merchant_id, "US", "United States"),
        "EU": accounts.add_market(user.merchant_id, "EU", "European Union"),
        "other": accounts.add_market(other.merchant_id, "JP", "Japan"),
    }


def _site_probe(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make /api/v1/key answer with the effective market the gate computed."""
    from portal.api.auth import current_key

    def probe() -> dict[str, Any]:
        key = current_key()
        return {
            "market_id": key.market_id,
            "market_code": key.market_code,
            "key_market_id": key.key_market_id,
        }

    monkeypatch.setitem(app.view_functions, "api.key_info", probe)


@pytest.mark.parametrize("via", ["bearer", "legacy"])
@pytest.mark.parametrize("site", ["US", "us", "id"])
def test_x_site_id_narrows_a_tenant_level_key(
    app: Flask,
    client: FlaskClient,
    user: User,
    markets: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    via: str,
    site: str,
) -> None:
    _site_probe(app, monkeypatch)
    _, token = make_key(user, "secret")
    value = str(markets["US"].id) if site == "id" else site
    headers = (bearer if via == "bearer" else legacy)(token, **{"X-Site-ID": value})
    response = client.get(KEY_URL, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {
        "market_id": markets["US"].id,
        "market_code": "US",
        "key_market_id": None,
    }


def test_tenant_level_key_without_x_site_id_has_no_market(
    app: Flask, client: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _site_probe(app, monkeypatch)
    _, token = make_key(user, "secret")
    body = client.get(KEY_URL, headers=bearer(token)).get_json()
    assert body == {"market_id": None, "market_code": None, "key_market_id": None}


@pytest.mark.parametrize("site", ["US", "id"])
def test_market_key_with_its_own_market_in_x_site_id(
    app: Flask,
    client: FlaskClient,
    user: User,
    markets: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    site: str,
) -> None:
    _site_probe(app, monkeypatch)
    us = markets["US"]
    _, token = make_key(user, "publishable", market_id=us.id)
    value = str(us.id) if site == "id" else site
    response = client.get(KEY_URL, headers=bearer(token, **{"X-Site-ID": value}))
    assert response.get_json() == {"market_id": us.id, "market_code": "US", "key_market_id": us.id}


@pytest.mark.parametrize(
    ("key_market", "site"),
    [
        ("US", "EU"),  # a market key asking for another market of its merchant
        ("US", "eu-id"),
        (None, "JP"),  # another merchant's market, by code
        (None, "other-id"),  # ... and by id
        (None, "ZZ"),  # no such market
        (None, "999999"),
        (None, "not a code!"),
        (None, "9" * 40),
    ],
)
def test_x_site_id_outside_the_key_is_404(
    client: FlaskClient,
    user: User,
    markets: dict[str, Any],
    key_market: str | None,
    site: str,
) -> None:
    market_id = markets[key_market].id if key_market else None
    _, token = make_key(user, "secret", market_id=market_id)
    value = {"eu-id": str(markets["EU"].id), "other-id": str(markets["other"].id)}.get(site, site)
    response = client.get(KEY_URL, headers=bearer(token, **{"X-Site-ID": value}))
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert response.headers["RateLimit-Limit"] == "60"


# --- secret keys: never from a browser, only from their IP ranges.


def _browser_events(key_id: int) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.api_key_id == key_id, AuditEvent.action == "secret_key_in_browser"
            )
        )
    )


def test_secret_key_with_an_origin_is_refused_and_audited_once_an_hour(
    client: FlaskClient, user: User
) -> None:
    key, token = make_key(user, "secret")
    headers = bearer(token, Origin="https://shop.example.com")
    browser = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(3):
        response = client.get(KEY_URL, headers=headers, environ_base=browser)
        assert response.status_code == 403
        assert error_of(response)["code"] == "secret_key_in_browser"
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Origin" in response.headers["Vary"]
    events = _browser_events(key.id)
    assert len(events) == 1
    assert events[0].actor == "api"
    assert events[0].ip == "198.51.100.7"
    assert events[0].merchant_id == user.merchant_id
    assert events[0].details["origin"] == "https://shop.example.com"

    events[0].created_at = utcnow() - timedelta(hours=1, minutes=1)
    db.session.commit()
    assert client.get(KEY_URL, headers=headers).status_code == 403
    assert len(_browser_events(key.id)) == 2


def test_secret_key_in_browser_shows_on_the_key_page_data(client: FlaskClient, user: User) -> None:
    key, token = make_key(user, "secret")
    client.get(KEY_URL, headers=bearer(token, Origin="null"))
    events = keys.audit_events(user.merchant_id, key_id=key.id)
    assert "secret_key_in_browser" in [event.action for event in events]


def test_the_key_service_writes_the_browser_event_at_most_once_an_hour(user: User) -> None:
    key, _ = make_key(user, "secret")
    record = keys.record_secret_key_in_browser
    assert record(user.merchant_id, key.id, "198.51.100.7", "https://a.example", "/api/v1/key")
    assert not record(user.merchant_id, key.id, "198.51.100.8", "https://b.example", "/api/v1/key")
    assert [event.ip for event in _browser_events(key.id)] == ["198.51.100.7"]


def test_the_gate_module_leaves_the_database_to_the_lookup_and_the_key_service() -> None:
    import portal.api.auth as gate
    from portal.api import lookup

    assert not hasattr(gate, "KeyLookup")
    assert not hasattr(gate, "PreparedLookup")
    assert lookup.KeyLookup and lookup.PreparedLookup
    source = inspect.getsource(gate)
    assert "db.session" not in source
    assert "sqlalchemy" not in source


@pytest.mark.parametrize(
    ("ranges", "client_ip", "allowed"),
    [
        ([], "203.0.113.9", True),
        (["203.0.113.0/24"], "203.0.113.9", True),
        (["203.0.113.0/24"], "198.51.100.1", False),
        (["203.0.113.0/24", "2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "203.0.113.9", False),
        (["10.0.0.1/32"], "10.0.0.1", True),
    ],
)
def test_secret_key_ip_ranges(
    client: FlaskClient, user: User, ranges: list[str], client_ip: str, allowed: bool
) -> None:
    _, token = make_key(user, "secret", allowed_ip_ranges=ranges)
    response = client.get(KEY_URL, headers=bearer(token), environ_base={"REMOTE_ADDR": client_ip})
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert error_of(response)["code"] == "ip_not_allowed"
        assert response.headers["RateLimit-Limit"] == "60"


def test_ip_not_allowed_says_where_to_add_a_range(client: FlaskClient, user: User) -> None:
    key, token = make_key(user, "secret", allowed_ip_ranges=["203.0.113.0/24"])
    response = client.get(
        KEY_URL, headers=bearer(token), environ_base={"REMOTE_ADDR": "198.51.100.1"}
    )
    message = error_of(response)["message"]
    assert "198.51.100.1" in message
    assert "allowed IP ranges" in message
    assert f"/settings/api-keys/{key.id}" in message


def test_a_dead_connection_from_the_pool_does_not_fail_the_request(
    client,
    user,
    monkeypatch,  # noqa: ANN001
) -> None:
    """The pool may hand back a record invalidated under it; the gate takes another one."""
    from portal.extensions import db

    _, token = make_key(user, "secret")
    real_raw_connection = db.engine.raw_connection
    handed_out = []

    class DeadFairy:
        dbapi_connection = None

        def invalidate(self) -> None:
            handed_out.append("invalidated")

    def raw_connection():  # noqa: ANN202
        if not handed_out:
            return DeadFairy()
        return real_raw_connection()

    monkeypatch.setattr(db.engine, "raw_connection", raw_connection)
    lookup = client.application.extensions.get("api_key_lookup")
    if lookup is not None:
        lookup._close_all(db.engine)  # start this thread without a held connection
    response = client.get("/api/v1/key", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert handed_out == ["invalidated"]
