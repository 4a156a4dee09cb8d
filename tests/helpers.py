"""Helpers shared by the portal's view tests: HTML parsing, htmx requests, row counts."""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup, Tag
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from portal.extensions import db
from portal.keys.models import ApiKey, AuditEvent
from tests.conftest import csrf_token

HX = {"HX-Request": "true"}


def confirmation_path(mail: Any) -> str:
    """The path and query of the sign-up mail's confirmation link."""
    body = mail.get_body(("plain",)).get_content()
    [link] = [word for word in body.split() if "/auth/confirm?token=" in word]
    return "/auth/confirm?" + link.partition("/auth/confirm?")[2]


def html(response: TestResponse) -> BeautifulSoup:
    """The response body as parsed HTML."""
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def assert_full_page(response: TestResponse) -> BeautifulSoup:
    """A whole HTML page, as a browser without JavaScript gets it."""
    body = response.get_data(as_text=True)
    assert "<html" in body, body[:300]
    assert "HX-Request" in response.headers.get("Vary", "")
    return html(response)


def assert_fragment(response: TestResponse, root_id: str | None = None) -> BeautifulSoup:
    """An htmx partial: no page around it, `Vary: HX-Request`, and (if given) its root's id."""
    body = response.get_data(as_text=True)
    assert "<html" not in body and "<body" not in body and "<main" not in body, body[:300]
    assert "HX-Request" in response.headers.get("Vary", "")
    soup = html(response)
    if root_id is not None:
        roots = [child for child in soup.children if isinstance(child, Tag)]
        assert [root.get("id") for root in roots] == [root_id]
    return soup


def text(node: Tag | BeautifulSoup | None) -> str:
    """The visible text of a node, whitespace collapsed."""
    assert node is not None
    return " ".join(node.get_text(" ").split())


def field_errors(soup: BeautifulSoup, name: str) -> str:
    """The error text shown in the container of the field called `name` (beside the field)."""
    control = soup.find(attrs={"name": name})
    assert control is not None, f"no field {name!r}"
    container = control.find_parent(class_="field")
    assert container is not None, f"field {name!r} has no .field container"
    errors = container.find(class_="field-errors")
    return text(errors) if errors is not None else ""


def count(model: Any) -> int:
    """How many rows a table holds."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def row_counts() -> dict[str, int]:
    """The number of rows in every table of the database."""
    db.session.expire_all()
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def key_state(key_id: int) -> dict[str, Any]:
    """Every column of a key, to show a request changed nothing about it."""
    db.session.expire_all()
    key = db.session.get(ApiKey, key_id)
    return {column.name: getattr(key, column.key) for column in ApiKey.__mapper__.columns}


def snapshot() -> tuple[int, int]:
    """The number of keys and audit events, to show a request wrote nothing."""
    return count(ApiKey), count(AuditEvent)


def post(
    client: FlaskClient,
    url: str,
    data: dict[str, Any] | None = None,
    htmx: bool = False,
    token_from: str = "/settings/api-keys/new",  # noqa: S107 - a page, not a password
) -> TestResponse:
    """Submit a form as a browser would: with the session's CSRF token (and htmx's header)."""
    form = {"csrf_token": csrf_token(client, token_from), **(data or {})}
    return client.post(url, data=form, headers=HX if htmx else {})
