"""Fixtures: an app on a real, migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from flask_migrate import upgrade

os.environ.setdefault("PORTAL_INSTANCE_PATH", tempfile.mkdtemp(prefix="portal-test-instance-"))
os.environ.pop("DATABASE_URL", None)
os.environ.pop("PORTAL_ENV", None)

from portal import create_app  # noqa: E402
from portal.accounts.models import User  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.mail import saved_mails  # noqa: E402
from tests.factories import PASSWORD, Victim, make_key, make_user, make_victim  # noqa: E402, F401
from tests.smtp import certificate, smtp_server  # noqa: E402, F401 - fixtures for every mail test

CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _database_url(tmp_dir: Path) -> str:
    """PostgreSQL when TEST_DATABASE_URL is set, else a SQLite file (WAL needs a file)."""
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_dir / 'test.db'}"


def test_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Settings for an app under test: fast password hashing, generous login limits."""
    config = {
        "TESTING": True,
        "PORTAL_ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PASSWORD_HASH_COST": {"memory_cost": 1024, "time_cost": 1},
        "LOGIN_LIMIT_PER_IP": "1000/minute",
        "LOGIN_LIMIT_PER_ACCOUNT": "1000/minute",
        "REGISTER_LIMIT_PER_IP": "1000/minute",
        "RATELIMIT_STORAGE_URI": "memory://",
        "SERVER_NAME": "portal.test",
        "USAGE_FLUSH_SECONDS": 0,
        # Tasks run at once, in the test's process; mail is saved where `mailbox` reads it.
        "TASK_IMMEDIATE": True,
        "MAIL_URL": "console://",
        "MAIL_DIR": str(Path(os.environ["PORTAL_INSTANCE_PATH"]) / "mail" / uuid.uuid4().hex),
        "PORTAL_URL": "http://portal.test",
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once for the whole run, from the migrations (never create_all)."""
    url = _database_url(tmp_path_factory.mktemp("db"))
    app = create_app(test_config(url))
    with app.app_context():
        if url.startswith("postgresql"):
            db.drop_all()
            db.session.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        upgrade()
        db.engine.dispose()
    return url


def _clear(app: Flask) -> None:
    """Delete every row, children first, so the next test starts empty."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test overrides of the app's settings (override this fixture in a module)."""
    return {}


@pytest.fixture
def app(database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    """The portal on the shared database, emptied after the test."""
    application = create_app(test_config(database_url, **app_config))

    @application.url_value_preprocessor
    def fresh_request_globals(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
        # The test holds one app context open, which Flask reuses for client requests;
        # a real request gets its own `g`, so start each one empty (runs before before_request).
        g.__dict__.clear()

    with application.app_context():
        yield application
    _clear(application)


@pytest.fixture
def mailbox(app: Flask) -> Callable[[], list[EmailMessage]]:
    """`mailbox()`: the mails this test's app sent so far, oldest first, parsed."""
    return lambda: saved_mails(app.config["MAIL_DIR"])


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser without JavaScript."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # noqa: ANN201
    """The `flask` command line."""
    return app.test_cli_runner()


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form on `url`, as a browser would have it."""
    page = client.get(url)
    match = CSRF_PATTERN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login form."""
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.get_data(as_text=True)


@pytest.fixture
def user(app: Flask) -> User:
    """A signed-up merchant user."""
    return make_user()


@pytest.fixture
def other_user(app: Flask) -> User:
    """A user of another merchant."""
    return make_user("intruder@other.test", "Other Shop")


@pytest.fixture
def signed_in(client: FlaskClient, user: User) -> FlaskClient:
    """The client, signed in as `user`."""
    sign_in(client, user.email)
    return client


@pytest.fixture
def victim(user: User) -> Victim:
    """`user`'s merchant with a market and a key in it: what another merchant must not reach."""
    return make_victim(user)
