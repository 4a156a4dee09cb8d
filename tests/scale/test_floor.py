"""The floor: API and /healthz requests skip the portal's session, CSRF and Flask-Limiter hooks,
while the portal's pages keep every one of them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.api import bp as api_bp
from portal.extensions import db
from portal.lean import API_PREFIX, is_lean_path
from tests.conftest import csrf_token
from tests.factories import bearer, make_key

PORTAL_ONLY = ("flask_limiter/", "flask_wtf/", "itsdangerous/")
# Reading or writing the signed session cookie (an empty session object costs nothing).
SESSION_WORK = ("open_session", "save_session", "get_signing_serializer")


def modules_called(action: Callable[[], Any]) -> set[str]:
    """`file:function` of every Python function `action` ran."""
    seen: set[str] = set()

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            seen.add(f"{code.co_filename}:{code.co_qualname}")

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return seen


def portal_only_code(files: set[str]) -> set[str]:
    """The files among `files` that belong to the portal's session, CSRF and limiter."""
    return {
        name
        for name in files
        if any(part in name for part in PORTAL_ONLY)
        or ("flask/sessions.py" in name and name.endswith(SESSION_WORK))
    }


def test_the_lean_prefix_is_the_api_blueprints() -> None:
    assert api_bp.url_prefix == API_PREFIX
    assert is_lean_path("/healthz") and is_lean_path("/api/v1") and is_lean_path("/api/v1/key")
    assert not is_lean_path("/api/v1x") and not is_lean_path("/keys") and not is_lean_path("/")


def test_api_requests_run_no_session_csrf_or_limiter_code(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "publishable")
    client.get("/api/v1/key", headers=bearer(token))  # warm: first-request imports
    responses = []

    def calls() -> None:
        responses.append(client.get("/api/v1/key", headers=bearer(token)))
        responses.append(client.get("/api/v1/catalog/products", headers=bearer(token)))
        responses.append(client.get("/healthz"))
        responses.append(client.get("/api/v1/no-such-thing", headers=bearer(token)))

    assert portal_only_code(modules_called(calls)) == set()
    assert [response.status_code for response in responses] == [200, 200, 200, 404]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "Set-Cookie" not in response.headers
    assert "RateLimit-Limit" in responses[0].headers


def test_portal_pages_still_run_them(client: FlaskClient) -> None:
    client.get("/auth/login")
    called = portal_only_code(modules_called(lambda: client.get("/auth/login")))
    assert any("flask_limiter" in name for name in called)
    assert any("flask_wtf" in name for name in called)
    assert any(name.endswith("SecureCookieSessionInterface.open_session") for name in called)


def test_a_session_cookie_sent_to_the_api_is_neither_read_nor_rewritten(
    signed_in: FlaskClient, user: User
) -> None:
    keys_page = signed_in.get("/settings/api-keys")
    assert keys_page.status_code == 200  # signed in
    _, api_token = make_key(user, "secret")

    response = signed_in.get("/api/v1/key", headers=bearer(api_token))

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert signed_in.get("/settings/api-keys").status_code == 200  # the session survived


def test_login_is_still_rate_limited(app: Flask, client: FlaskClient, user: User) -> None:
    app.config["LOGIN_LIMIT_PER_IP"] = "2/minute"
    statuses = []
    for _ in range(3):
        token = csrf_token(client, "/auth/login")
        answer = client.post(
            "/auth/login",
            data={"email": user.email, "password": "wrong password", "csrf_token": token},
        )
        statuses.append(answer.status_code)
    assert statuses[-1] == 429
    assert all(status != 429 for status in statuses[:-1])


def test_hooks_outside_the_portal_groups_still_run_for_api_requests(
    database_url: str, user: User
) -> None:
    from portal import create_app
    from tests.conftest import test_config

    application = create_app(test_config(database_url))
    seen: list[str] = []
    application.before_request(lambda: seen.append("before") and None)

    @application.after_request
    def after(response: Any) -> Any:
        seen.append("after")
        return response

    application.teardown_request(lambda _error: seen.append("teardown"))
    _, token = make_key(user, "publishable")
    try:
        response = application.test_client().get("/api/v1/key", headers=bearer(token))
    finally:
        with application.app_context():  # its key lookup holds a connection of its own
            db.session.remove()
            db.engine.dispose()
    assert response.status_code == 200
    assert seen == ["before", "after", "teardown"]
