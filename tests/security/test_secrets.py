"""A secret key leaves the portal once, in the reveal: never in logs, in pages after it, or in
error bodies."""

from __future__ import annotations

import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from portal.accounts.models import User
from portal.keys.models import ApiKey
from tests.helpers import html, post

TOKEN = re.compile(r"sk_(?:live|test)_[0-9A-Za-z]{38}")


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Served on 127.0.0.1 as well as through the test client."""
    return {"SERVER_NAME": None}


@pytest.fixture
def live_api(app: Flask) -> Iterator[str]:
    """The app behind werkzeug's real server (whose access log records each request line)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def call(base_url: str, path: str, **headers: str) -> tuple[int, str]:
    """GET an API path over HTTP; (status, body) whatever the status."""
    request = urllib.request.Request(base_url + path, headers=headers)  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def revealed(response: Any, client: FlaskClient) -> str:
    """The key shown in the reveal dialog, on the page the form's 303 leads to."""
    assert response.status_code == 303
    return html(client.get(response.headers["Location"])).find(id="revealed-key")["value"]


def test_secret_keys_never_reach_logs_later_pages_or_error_bodies(
    app: Flask,
    signed_in: FlaskClient,
    user: User,
    live_api: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("werkzeug", "sqlalchemy.engine", "portal", "flask_limiter", app.logger.name):
        caplog.set_level(logging.DEBUG, logger=name)

    created = post(
        signed_in,
        "/settings/api-keys/new",
        {"key_type": "secret", "label": "Sync", "rate_limit": "1000", "scopes": ["products:read"]},
    )
    first = revealed(created, signed_in)
    fenced = revealed(
        post(
            signed_in,
            "/settings/api-keys/new",
            {
                "key_type": "secret",
                "label": "Fenced",
                "rate_limit": "60",
                "allowed_ip_ranges-0": "10.0.0.0/8",
            },
        ),
        signed_in,
    )
    key_id = app.extensions["sqlalchemy"].session.query(ApiKey).filter_by(label="Sync").one().id
    second = revealed(
        post(signed_in, f"/settings/api-keys/{key_id}/rotate", {"grace": "now"}), signed_in
    )
    secrets = [first, fenced, second]
    assert all(TOKEN.fullmatch(token) for token in secrets)

    error_bodies = []
    for path, headers, status in [
        ("/api/v1/key", {"Authorization": f"Bearer {second}"}, 200),
        ("/api/v1/admin/products", {"X-API-Key": second}, 200),
        ("/api/v1/admin/customers", {"Authorization": f"Bearer {second}"}, 403),  # scope
        ("/api/v1/key", {"Authorization": f"Bearer {second}", "Origin": "https://shop.test"}, 403),
        ("/api/v1/key", {"Authorization": f"Bearer {fenced}"}, 403),  # outside its IP ranges
        ("/api/v1/key", {"Authorization": f"Bearer {first}"}, 401),  # rotated: revoked now
        ("/api/v1/key", {"Authorization": f"Bearer {second[:-1]}x"}, 401),  # bad checksum
        ("/api/v1/key", {"Authorization": f"Bearer {second}x"}, 401),  # malformed
        ("/api/v1/key", {"Authorization": f"Basic {second}"}, 401),  # wrong scheme
        ("/api/v1/no-such-thing", {"Authorization": f"Bearer {second}"}, 404),
    ]:
        got, body = call(live_api, path, **headers)
        assert got == status, (path, headers, body)
        if got >= 400:
            error_bodies.append(body)
    app.extensions["usage_recorder"].flush()

    pages = [
        "/settings/api-keys",
        f"/settings/api-keys/{key_id}",
        "/settings/audit",
        "/settings/usage",
        "/settings/usage.csv",
        f"/settings/api-keys/{key_id}/usage",
        f"/settings/api-keys/{key_id}/usage.csv",
    ]
    for key in app.extensions["sqlalchemy"].session.query(ApiKey).all():
        pages += [
            f"/settings/api-keys/{key.id}",
            f"/settings/api-keys/{key.id}/edit",
            f"/settings/api-keys/{key.id}/rotate",
            f"/settings/api-keys/{key.id}/revoke",
        ]
    bodies = [signed_in.get(url).get_data(as_text=True) for url in pages]

    assert any("/api/v1/key" in message for message in caplog.messages)  # access log captured
    logged = caplog.text + "\n".join(repr(record.args) for record in caplog.records)
    for token in secrets:
        random_part = token[8:40]
        assert random_part not in logged
        for body in error_bodies + bodies:
            assert random_part not in body
    assert any("sk_live_" in body for body in bodies)  # the masked prefix is shown, not the key
