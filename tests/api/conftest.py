"""API fixtures: header helpers and one key of each type for the `user` fixture's merchant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from portal.accounts.models import User
from portal.extensions import db
from tests.conftest import make_key


def bearer(token: str, **headers: str) -> dict[str, str]:
    """Request headers carrying `token` as `Authorization: Bearer`, plus any others."""
    return {"Authorization": f"Bearer {token}", **headers}


def legacy(token: str, **headers: str) -> dict[str, str]:
    """Request headers carrying `token` in the legacy `X-API-Key` header, plus any others."""
    return {"X-API-Key": token, **headers}


@pytest.fixture
def secret_token(user: User) -> str:
    """A secret key of `user`'s merchant with the default scopes."""
    return make_key(user, "secret")[1]


@pytest.fixture
def publishable_token(user: User) -> str:
    """A publishable key of `user`'s merchant with the default scopes and no allowed origins."""
    return make_key(user, "publishable")[1]


@contextmanager
def recorded_statements(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL statements the app's engine runs inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def sql_statements(app: Flask) -> Callable[[], Any]:
    """`with sql_statements() as statements:` records the SQL run inside the block."""
    return lambda: recorded_statements(app)
