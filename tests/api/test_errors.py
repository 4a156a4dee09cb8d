"""Every API error is the SPEC's JSON, from one helper; the portal keeps its HTML pages."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from portal.api.errors import ApiError, error_response, json_body
from portal.extensions import csrf
from tests.api.conftest import bearer

ECHO_URLS = {"blueprint": "/api/v1/carts", "app": "/api/v1/_test/echo"}


def echo() -> dict[str, Any]:
    """Answer with the parsed JSON body."""
    return {"received": json_body()}


@pytest.fixture
def echo_routes(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /api/v1/carts (inside the blueprint, past the gate) and an app route echo the body."""
    monkeypatch.setitem(app.view_functions, "api.create_cart", echo)
    app.add_url_rule(ECHO_URLS["app"], "test_echo", csrf.exempt(echo), methods=["POST"])


def assert_json_error(response: Any, status: int, code: str) -> dict[str, str]:
    """The response is our JSON error with this status and code, and nothing else."""
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["error"]
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "<" not in response.get_data(as_text=True)
    return body["error"]


def test_error_response_shape(app: Flask) -> None:
    with app.test_request_context("/api/v1/x"):
        response = error_response(418, "teapot", "Short and stout.", {"X-Extra": "1"})
    assert response.status_code == 418
    assert response.get_json() == {"error": {"code": "teapot", "message": "Short and stout."}}
    assert response.headers["X-Extra"] == "1"


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    error = assert_json_error(client.get("/api/v1/nothing/here"), 404, "not_found")
    assert "/api/v1/nothing/here" in error["message"]


def test_unknown_route_preflight_is_json_404(client: FlaskClient) -> None:
    assert_json_error(client.options("/api/v1/nothing"), 404, "not_found")


def test_wrong_method_is_json_405_with_allow(client: FlaskClient, secret_token: str) -> None:
    response = client.delete("/api/v1/key", headers=bearer(secret_token))
    assert_json_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_portal_keeps_its_html_error_pages(client: FlaskClient) -> None:
    response = client.get("/settings/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert client.get("/api/v10/key").mimetype == "text/html"  # not under /api/v1


@pytest.mark.parametrize("where", list(ECHO_URLS))
def test_valid_json_reaches_the_view(
    client: FlaskClient, echo_routes: None, publishable_token: str, where: str
) -> None:
    response = client.post(
        ECHO_URLS[where], json={"cart_id": "c_1"}, headers=bearer(publishable_token)
    )
    assert response.status_code == 200
    assert response.get_json() == {"received": {"cart_id": "c_1"}}


@pytest.mark.parametrize("where", list(ECHO_URLS))
@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "invalid_request"),
        ('{"price": NaN}', "application/json", 400, "invalid_request"),
        ("[1, 2]", "application/json", 400, "invalid_request"),
        ('"text"', "application/json", 400, "invalid_request"),
        ("", "application/json", 400, "invalid_request"),
        (b"\xff\xfe", "application/json", 400, "invalid_request"),
        ('{"a": 1}', "text/plain", 415, "unsupported_media_type"),
        ("a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_bad_bodies_are_json_errors(
    client: FlaskClient,
    echo_routes: None,
    publishable_token: str,
    where: str,
    data: str | bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    response = client.post(
        ECHO_URLS[where], data=data, content_type=content_type, headers=bearer(publishable_token)
    )
    assert_json_error(response, status, code)


@pytest.mark.parametrize("where", list(ECHO_URLS))
def test_empty_body_without_content_type_is_an_empty_object(
    client: FlaskClient, echo_routes: None, publishable_token: str, where: str
) -> None:
    response = client.post(ECHO_URLS[where], headers=bearer(publishable_token))
    assert response.get_json() == {"received": {}}


@pytest.mark.parametrize("where", list(ECHO_URLS))
def test_too_large_body_is_json_413(
    client: FlaskClient, echo_routes: None, publishable_token: str, where: str
) -> None:
    body = '{"x": "' + "a" * (1024 * 1024 + 1) + '"}'
    response = client.post(
        ECHO_URLS[where],
        data=body,
        content_type="application/json",
        headers=bearer(publishable_token),
    )
    assert_json_error(response, 413, "request_too_large")


def test_api_error_raised_in_a_view(
    app: Flask, client: FlaskClient, secret_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def view() -> None:
        raise ApiError(409, "conflict", "Already fulfilled.", {"X-Hint": "yes"})

    monkeypatch.setitem(app.view_functions, "api.key_info", view)
    response = client.get("/api/v1/key", headers=bearer(secret_token))
    assert_json_error(response, 409, "conflict")
    assert response.headers["X-Hint"] == "yes"
    assert response.headers["RateLimit-Limit"] == "60"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "invalid_request"), (403, "forbidden"), (404, "not_found"), (409, "conflict")],
)
def test_abort_in_a_view_is_json(
    app: Flask,
    client: FlaskClient,
    secret_token: str,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    code: str,
) -> None:
    monkeypatch.setitem(app.view_functions, "api.key_info", lambda: abort(status))
    assert_json_error(client.get("/api/v1/key", headers=bearer(secret_token)), status, code)


def test_abort_with_a_description_keeps_it(
    app: Flask, client: FlaskClient, secret_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        app.view_functions, "api.key_info", lambda: abort(404, description="No such order.")
    )
    response = client.get("/api/v1/key", headers=bearer(secret_token))
    error = assert_json_error(response, 404, "not_found")
    assert error["message"] == "No such order."


def _boom() -> None:
    raise RuntimeError("database exploded at line 42")


def _check_internal_error(response: Any, caplog: pytest.LogCaptureFixture, token: str) -> None:
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    request_id = response.headers["X-Request-Id"]
    assert error == {
        "code": "internal_error",
        "message": error["message"],
        "request_id": request_id,
    }
    assert request_id in error["message"]
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "exploded", "line 42", token):
        assert leak not in text
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert token not in caplog.text


def test_unexpected_error_in_a_view_is_json_500_with_a_request_id(
    app: Flask,
    client: FlaskClient,
    secret_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(app.view_functions, "api.key_info", _boom)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/key", headers=bearer(secret_token))
    _check_internal_error(response, caplog, secret_token)
    assert "Origin" in response.headers["Vary"]


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Let unhandled errors reach the error handlers, as in production."""
    return {"PROPAGATE_EXCEPTIONS": False}


def test_unexpected_error_in_an_app_route_under_the_api_is_json_500(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    app.add_url_rule("/api/v1/_test/boom", "test_boom", _boom)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/_test/boom", headers=bearer("sk_live_secretish"))
    _check_internal_error(response, caplog, "sk_live_secretish")


def test_unexpected_error_outside_the_api_stays_html(app: Flask, client: FlaskClient) -> None:
    app.add_url_rule("/_test/boom", "test_portal_boom", _boom)
    response = client.get("/_test/boom")
    assert response.status_code == 500
    assert response.mimetype == "text/html"


def test_json_body_outside_a_view(app: Flask) -> None:
    with app.test_request_context("/api/v1/x", method="POST", json={"a": [1]}):
        assert json_body() == {"a": [1]}
    with (
        app.test_request_context("/api/v1/x", method="POST", data="x", content_type="text/csv"),
        pytest.raises(ApiError) as raised,
    ):
        json_body()
    assert (raised.value.status, raised.value.code) == (415, "unsupported_media_type")


def test_api_error_keeps_its_parts() -> None:
    error = ApiError(404, "not_found", "No such cart.", {"X-A": "b"})
    assert (error.status, error.code, error.message, error.headers) == (
        404,
        "not_found",
        "No such cart.",
        {"X-A": "b"},
    )
    assert str(error) == "No such cart."
