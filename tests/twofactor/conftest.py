"""Fixtures of the two-factor tests: a clock the test moves, and members with two factors."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient

from portal.accounts import permissions
from portal.accounts.models import User
from portal.extensions import db
from portal.twofactor import service, totp
from tests.conftest import csrf_token
from tests.factories import PASSWORD

START = 1_800_000_000.0  # a multiple of 30: the first second of a time step


class Clock:
    """A clock the test moves by hand (sessions, pending sign-ins and TOTP codes read it)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The portal's clock, frozen until the test moves it."""
    frozen = Clock()
    monkeypatch.setattr(permissions, "now", frozen)
    return frozen


@dataclass
class TwoFactor:
    """A member's second factor as their app and their drawer hold it."""

    secret: str
    recovery_codes: list[str]

    def code(self, now: float) -> str:
        """The code the app shows at `now`."""
        return totp.code_at(self.secret, now)


def turn_on(user: User, clock: Clock) -> TwoFactor:
    """Two-factor sign-in for `user` through the service, confirmed with the code of 30 s ago
    (so the current step is still unused), as if their app showed it."""
    secret = totp.new_secret()
    codes = service.enable(user, secret, totp.code_at(secret, clock.now - 30))
    db.session.refresh(user)
    return TwoFactor(secret, codes)


def password_step(client: FlaskClient, email: str, password: str = PASSWORD, **kwargs: object):  # noqa: ANN201
    """Post the sign-in form; the response (303 to the code step for a member with 2FA)."""
    token = csrf_token(client, "/auth/login")
    return client.post(
        "/auth/login",
        data={"email": email, "password": password, "csrf_token": token},
        **kwargs,
    )


def code_step(client: FlaskClient, code: str, headers: dict[str, str] | None = None):  # noqa: ANN201
    """Post the code page's form with `code`."""
    page = client.get("/auth/two-factor")
    match = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    token = match.group(1) if match else csrf_token(client, "/auth/login")
    return client.post(
        "/auth/two-factor", data={"csrf_token": token, "code": code}, headers=headers or {}
    )


def sign_in_with_code(client: FlaskClient, email: str, two_factor: TwoFactor, clock: Clock) -> None:
    """Both steps of signing in, with the app's current code."""
    assert password_step(client, email).headers["Location"].endswith("/auth/two-factor")
    response = code_step(client, two_factor.code(clock.now))
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
