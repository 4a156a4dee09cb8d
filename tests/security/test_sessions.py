"""Sign-in as an attacker sees it: open redirects, brute force, session fixation and theft."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.keys.models import ApiKey
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import HX, count, html, text

HOME = "/settings/api-keys"
OFFSITE = [
    "//evil.com",
    "https://evil.com",
    "http://evil.com/settings/api-keys",
    "/\\evil.com",
    "\\\\evil.com",
    "/\\/evil.com",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "///evil.com",
    "/\t/evil.com",
    " //evil.com",
    "https:evil.com",
    "evil.com",
]


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Login limits a test asks for with `parametrize("app_config", [...], indirect=True)`."""
    return getattr(request, "param", {})


def login(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    next_: str | None = None,
    htmx: bool = False,
    **environ: str,
) -> Any:
    """Post the sign-in form, from the address and headers given."""
    token = csrf_token(client, "/auth/login")
    return client.post(
        "/auth/login",
        query_string={"next": next_} if next_ is not None else None,
        data={"csrf_token": token, "email": email, "password": password},
        headers=HX if htmx else {},
        environ_base={"REMOTE_ADDR": "127.0.0.1", **environ},
    )


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize("target", OFFSITE)
def test_next_never_leaves_the_portal(
    client: FlaskClient, user: User, target: str, htmx: bool
) -> None:
    response = login(client, user.email, next_=target, htmx=htmx)

    location = response.headers["HX-Redirect" if htmx else "Location"]
    assert location == HOME


def test_a_local_next_is_honoured(client: FlaskClient, user: User) -> None:
    response = login(client, user.email, next_="/settings/audit?before=5")

    assert response.headers["Location"] == "/settings/audit?before=5"


@pytest.mark.parametrize(
    "app_config",
    [{"LOGIN_LIMIT_PER_IP": "5/minute", "LOGIN_LIMIT_PER_ACCOUNT": "1000/minute"}],
    indirect=True,
)
def test_password_spraying_from_one_address_is_throttled_whatever_it_claims(
    client: FlaskClient, user: User
) -> None:
    """X-Forwarded-For is not trusted: a forged header per attempt does not reset the limit."""
    statuses = [
        login(
            client, f"guess{n}@shop.test", "Password123!", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        ).status_code
        for n in range(7)
    ]

    assert statuses == [422] * 5 + [429] * 2
    blocked = login(client, user.email, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert blocked.status_code == 429
    assert "Too many attempts" in text(html(blocked))
    assert client.get(HOME).status_code == 302  # never signed in


@pytest.mark.parametrize(
    "app_config",
    [{"LOGIN_LIMIT_PER_IP": "1000/minute", "LOGIN_LIMIT_PER_ACCOUNT": "4/minute"}],
    indirect=True,
)
@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_guessing_one_accounts_password_from_an_address_is_throttled_not_the_owner(
    client: FlaskClient, user: User, htmx: bool
) -> None:
    # The email's spellings count as one account; the limit is per account and address, so the
    # attacker's failures never lock the owner out from elsewhere (SPEC, issue 10 item 3).
    statuses = [
        login(client, variant, f"guess {n}", htmx=htmx, REMOTE_ADDR="198.51.100.9").status_code
        for n, variant in enumerate(
            [user.email, user.email.upper(), f" {user.email} ", user.email, user.email]
        )
    ]

    assert statuses == [422, 422, 422, 422, 429]
    # Even the right password waits there: the attacker cannot tell a hit from a miss.
    assert login(client, user.email, htmx=htmx, REMOTE_ADDR="198.51.100.9").status_code == 429
    assert client.get(HOME).status_code == 302
    owner = login(client, user.email, htmx=htmx, REMOTE_ADDR="192.0.2.99")
    assert owner.status_code == (204 if htmx else 303)


def test_the_session_is_rotated_on_sign_in_and_a_planted_cookie_gets_nothing(
    app: Flask, client: FlaskClient, user: User
) -> None:
    csrf_token(client, "/auth/login")
    planted = client.get_cookie("session", domain="portal.test").value
    attacker = app.test_client()
    attacker.set_cookie("session", planted, domain="portal.test")

    assert login(client, user.email).status_code == 303

    assert client.get_cookie("session", domain="portal.test").value != planted
    assert client.get(HOME).status_code == 200
    response = attacker.get(HOME)
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login")


def test_a_stolen_cookie_stops_working_for_reads_and_writes_after_logout(
    app: Flask, client: FlaskClient, user: User
) -> None:
    login(client, user.email)
    stolen = client.get_cookie("session", domain="portal.test").value
    thief = app.test_client()
    thief.set_cookie("session", stolen, domain="portal.test")
    token = csrf_token(thief, "/settings/api-keys/new")  # the thief's page works before logout

    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/settings/markets")})

    assert thief.get(HOME).status_code == 302
    forged = thief.post(
        "/settings/api-keys/new",
        data={"csrf_token": token, "key_type": "secret", "label": "Backdoor", "rate_limit": "60"},
    )
    assert forged.status_code in (302, 303, 400)  # to sign-in, or the token died with the session
    assert count(ApiKey) == 0


def test_a_cookie_signed_with_another_secret_is_ignored(
    app: Flask, client: FlaskClient, user: User
) -> None:
    login(client, user.email)
    genuine = client.get_cookie("session", domain="portal.test").value
    payload, _, signature = genuine.rpartition(".")
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    forger = app.test_client()
    forger.set_cookie("session", forged, domain="portal.test")

    assert forger.get(HOME).status_code == 302
