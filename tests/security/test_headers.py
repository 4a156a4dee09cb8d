"""Security headers and cookies: CSP without inline script, no framing, HSTS and Secure in
production, and no cache ever keeps a page that shows a key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.accounts.models import User
from portal.extensions import db
from tests import conftest
from tests.conftest import CSRF_PATTERN, PASSWORD, make_key, sign_in
from tests.helpers import HX, html, post

ANONYMOUS_PAGES = ["/auth/login", "/auth/register", "/no-such-page"]
SIGNED_IN_PAGES = [
    "/settings/api-keys",
    "/settings/api-keys/new",
    "/settings/api-keys/new?key_type=secret",
    "/settings/api-keys/{key}",
    "/settings/api-keys/{key}/edit",
    "/settings/api-keys/{key}/rotate",
    "/settings/api-keys/{key}/revoke",
    "/settings/api-keys/{key}/usage",
    "/settings/markets",
    "/settings/markets/{market}/api-keys",
    "/settings/audit",
    "/settings/usage",
]


def directives(response: Any) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    policy = response.headers["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


@pytest.fixture
def pages(signed_in: FlaskClient, user: User) -> Iterator[tuple[str, Any]]:
    """(url, response) for every HTML page, anonymous ones from a fresh browser."""
    from portal.accounts import service as accounts

    market = accounts.add_market(user.merchant_id, "US", "United States")
    key, _ = make_key(user, "publishable", label="Shop", market_id=market.id)
    anonymous = signed_in.application.test_client()
    responses = [(url, anonymous.get(url)) for url in ANONYMOUS_PAGES]
    for route in SIGNED_IN_PAGES:
        url = route.format(key=key.id, market=market.id)
        responses.append((url, signed_in.get(url)))
        responses.append((url + " (htmx)", signed_in.get(url, headers=HX)))
    return responses


def test_every_page_has_a_strict_content_security_policy(pages: list[tuple[str, Any]]) -> None:
    for url, response in pages:
        assert response.status_code in (200, 404), url
        policy = directives(response)
        assert policy["script-src"] == ["'self'"], url
        assert policy["default-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"], url
        assert policy["frame-ancestors"] == ["'none'"], url
        assert policy["base-uri"] == ["'none'"], url
        assert policy["form-action"] == ["'self'"], url
        header = response.headers["Content-Security-Policy"]
        assert "unsafe" not in header and "*" not in header, url


def test_every_page_refuses_framing_and_sniffing(pages: list[tuple[str, Any]]) -> None:
    for url, response in pages:
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["X-Frame-Options"] == "DENY", url
        assert response.headers["Referrer-Policy"] == "same-origin", url
        assert "Strict-Transport-Security" not in response.headers, url  # plain http in dev


def test_pages_need_no_inline_script_or_eval(pages: list[tuple[str, Any]]) -> None:
    """What the CSP would block is absent: htmx runs from attributes that need no eval."""
    for url, response in pages:
        soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
        for script in soup.find_all("script"):
            assert script.get("src", "").startswith("/static/"), (url, str(script))
        for element in soup.find_all(True):
            for name, value in element.attrs.items():
                value = " ".join(value) if isinstance(value, list) else str(value)
                assert not name.startswith("on"), (url, name)  # inline handlers
                assert name != "style", (url, str(element)[:80])  # style-src 'self'
                assert not name.startswith(("hx-on", "data-hx-on")), (url, name)
                if name.startswith("hx-"):
                    assert not value.strip().startswith("js:"), (url, name, value)
                    assert "javascript:" not in value, (url, name, value)
                if name == "hx-trigger":
                    assert "[" not in value, (url, value)  # trigger filters are eval'd
                if name == "href":
                    assert not value.strip().lower().startswith("javascript:"), (url, value)
        config = soup.find("meta", attrs={"name": "htmx-config"})
        if config is not None:  # htmx's injected indicator stylesheet is off
            assert '"includeIndicatorCSS": false' in config["content"], url


def test_every_signed_in_page_is_never_stored(pages: list[tuple[str, Any]]) -> None:
    for url, response in pages:
        if url.startswith("/settings/"):
            assert response.headers["Cache-Control"] == "no-store", url


def test_the_reveal_after_create_and_rotate_is_never_stored(
    signed_in: FlaskClient, user: User
) -> None:
    for htmx in (False, True):
        created = post(
            signed_in,
            "/settings/api-keys/new",
            {"key_type": "secret", "label": "Sync", "rate_limit": "60"},
            htmx=htmx,
        )
        if not htmx:  # without JavaScript: 303 to the page that shows the key once
            assert created.status_code == 303
            assert created.headers["Cache-Control"] == "no-store"
            created = signed_in.get(created.headers["Location"])
        assert created.status_code == 200 and "sk_live_" in created.get_data(as_text=True)
        assert created.headers["Cache-Control"] == "no-store"
    key, _ = make_key(user, "secret", label="Old")
    rotated = post(signed_in, f"/settings/api-keys/{key.id}/rotate", {"grace": "24h"})
    assert rotated.status_code == 303
    rotated = signed_in.get(rotated.headers["Location"])
    assert rotated.status_code == 200 and "sk_live_" in rotated.get_data(as_text=True)
    assert rotated.headers["Cache-Control"] == "no-store"


def test_a_publishable_key_page_shows_the_key_and_is_never_stored(
    signed_in: FlaskClient, user: User
) -> None:
    key, token = make_key(user, "publishable", label="Storefront")

    response = signed_in.get(f"/settings/api-keys/{key.id}")

    assert html(response).find(id="publishable-key")["value"] == token
    assert response.headers["Cache-Control"] == "no-store"


def test_static_files_stay_cacheable_for_signed_in_users(signed_in: FlaskClient) -> None:
    response = signed_in.get("/static/css/portal.css")
    response.close()

    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_the_json_api_keeps_its_own_headers(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "publishable")

    response = client.get("/api/v1/catalog/products", headers={"Authorization": f"Bearer {token}"})

    assert response.is_json
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "RateLimit-Limit" in response.headers


def test_session_cookie_is_http_only_and_lax_but_not_secure_on_plain_http(
    client: FlaskClient,
) -> None:
    cookie = cookie_attributes(client.get("/auth/login"))

    assert {"httponly", "samesite"} <= set(cookie) and cookie["samesite"] == "lax"
    assert "secure" not in cookie


@pytest.fixture
def production_app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The portal as `PORTAL_ENV=production` configures it (secrets from the environment)."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 48)
    monkeypatch.setenv("API_KEY_PEPPER", "p" * 48)
    monkeypatch.setenv("PORTAL_URL", "https://keys.shop-platform.example")
    application = create_app(conftest.test_config(database_url, PORTAL_ENV="production"))
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()  # close its connections now, not whenever the collector runs


def test_production_sends_hsts_and_secure_cookies(production_app: Flask, user: User) -> None:
    browser = production_app.test_client()
    page = browser.get("/auth/login", base_url="https://portal.test")
    token = CSRF_PATTERN.search(page.get_data(as_text=True)).group(1)

    signed_in = browser.post(
        "/auth/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        base_url="https://portal.test",
        headers={"Referer": "https://portal.test/auth/login"},
    )

    for response in (page, signed_in):
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        max_age = int(response.headers["Strict-Transport-Security"].split("=")[1].split(";")[0])
        assert max_age >= 31_536_000
    assert signed_in.status_code == 303
    cookie = cookie_attributes(signed_in)
    assert {"secure", "httponly"} <= set(cookie) and cookie["samesite"] == "lax"
    api = browser.get("/healthz", base_url="https://portal.test")
    assert "Strict-Transport-Security" in api.headers


def cookie_attributes(response: Any) -> dict[str, str]:
    """The attributes of the session cookie a response sets, lower-cased."""
    cookies = [
        value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")
    ]
    assert cookies, response.headers
    attributes = {}
    for part in cookies[-1].split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value.lower()
    return attributes


def test_no_page_can_be_framed_even_signed_in(app: Flask, user: User) -> None:
    browser = app.test_client()
    sign_in(browser, user.email)

    response = browser.get("/settings/api-keys")

    assert directives(response)["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
