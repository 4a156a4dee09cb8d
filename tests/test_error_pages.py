"""The portal's error answers: a page without JavaScript, only the error's card for htmx (a
page inside a page showed two top bars), and its own 500 page (no Werkzeug page, no trace)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.accounts.models import User
from portal.keys import service as keys
from tests.conftest import PASSWORD, csrf_token, sign_in
from tests.helpers import HX, assert_fragment, assert_full_page, row_counts, text

BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Unhandled errors reach the error pages, as in production; the 6th sign-in is refused."""
    return {"PROPAGATE_EXCEPTIONS": False, "LOGIN_LIMIT_PER_IP": "5/minute"}


def assert_error(response: TestResponse, status: int, title: str, htmx: bool) -> str:
    """The error's card alone for htmx, else a whole page with one top bar; returns its text."""
    assert response.status_code == status
    assert response.mimetype == "text/html"
    if htmx:
        soup = assert_fragment(response, "error")
        assert soup.find(class_="topbar") is None
    else:
        soup = assert_full_page(response)
        assert len(soup.find_all(class_="topbar")) == 1
        assert soup.find("main").find(id="error") is not None
    assert text(soup.find("h1")) == title
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "Werkzeug" not in body and "<title>500" not in body
    return text(soup)


@BOTH
def test_the_sixth_wrong_password_is_a_429_card(
    client: FlaskClient, user: User, htmx: bool
) -> None:
    token = csrf_token(client, "/auth/login")
    form = {"csrf_token": token, "email": user.email, "password": "not the password"}
    statuses = [client.post("/auth/login", data=form, headers=HX).status_code for _ in range(5)]

    response = client.post("/auth/login", data=form, headers=HX if htmx else {})

    assert statuses == [422] * 5
    page = assert_error(response, 429, "Too many attempts", htmx)
    assert "Wait a minute" in page
    assert int(response.headers["Retry-After"]) > 0


@BOTH
def test_an_unknown_page_is_a_404(signed_in: FlaskClient, htmx: bool) -> None:
    response = signed_in.get("/settings/nothing-here", headers=HX if htmx else {})

    assert_error(response, 404, "Page not found", htmx)


@BOTH
def test_another_merchants_key_is_a_404_card(
    signed_in: FlaskClient, other_user: User, htmx: bool
) -> None:
    from tests.conftest import make_key

    foreign, _ = make_key(other_user, "secret", label="Not yours")

    response = signed_in.get(f"/settings/api-keys/{foreign.id}/edit", headers=HX if htmx else {})

    assert "Not yours" not in assert_error(response, 404, "Page not found", htmx)


@BOTH
def test_a_method_the_page_does_not_take_is_a_405_with_allow(
    signed_in: FlaskClient, htmx: bool
) -> None:
    token = csrf_token(signed_in, "/settings/api-keys/new")

    response = signed_in.post(
        "/settings/api-keys", data={"csrf_token": token}, headers=HX if htmx else {}
    )

    assert_error(response, 405, "Method not allowed", htmx)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


@BOTH
def test_a_form_without_its_token_is_a_400_card_and_changes_nothing(
    signed_in: FlaskClient, htmx: bool
) -> None:
    before = row_counts()

    response = signed_in.post(
        "/settings/api-keys/new",
        data={"key_type": "secret", "label": "Forged", "rate_limit": "60"},
        headers=HX if htmx else {},
    )

    assert "reload the page" in assert_error(response, 400, "Form expired", htmx)
    assert row_counts() == before


def _forbidden() -> None:
    abort(403)


@BOTH
def test_a_refused_action_is_a_403_card(app: Flask, client: FlaskClient, htmx: bool) -> None:
    # No portal page refuses by role yet (team roles will): a route that does, added for the test.
    app.add_url_rule("/settings/_test/forbidden", "test_forbidden", _forbidden)

    response = client.get("/settings/_test/forbidden", headers=HX if htmx else {})

    assert_error(response, 403, "Not allowed", htmx)


def _explode(*_args: Any, **_kwargs: Any) -> None:
    raise RuntimeError("database exploded at line 42 with owner@shop.test")


@BOTH
@pytest.mark.parametrize(
    ("url", "breaks"),
    [
        (
            "/settings/api-keys",
            lambda monkeypatch: monkeypatch.setattr(keys, "list_keys_page", _explode),
        ),
        (
            "/settings/audit",
            lambda monkeypatch: monkeypatch.setattr(keys, "audit_events", _explode),
        ),
    ],
    ids=["key-list", "audit-log"],
)
def test_an_unexpected_error_is_the_portals_500_page_with_a_reference(
    app: Flask,
    client: FlaskClient,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    url: str,
    breaks: Callable[[pytest.MonkeyPatch], None],
    htmx: bool,
) -> None:
    sign_in(client, user.email, PASSWORD)
    breaks(monkeypatch)

    with caplog.at_level(logging.ERROR):
        response = client.get(url, headers=HX if htmx else {})

    page = assert_error(response, 500, "Something went wrong", htmx)
    reference = response.headers["X-Request-Id"]
    assert reference.startswith("req_") and reference in page
    assert "exploded" not in page and "RuntimeError" not in page
    # The operator finds the reference in the log, next to the traceback Flask logged.
    assert any(reference in record.getMessage() for record in caplog.records)
    assert any(
        record.exc_info and "exploded" in str(record.exc_info[1]) for record in caplog.records
    )
    assert response.headers["Cache-Control"] == "no-store"


def test_the_api_keeps_its_json_errors(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing", headers=HX)

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
