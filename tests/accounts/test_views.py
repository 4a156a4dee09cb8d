"""Registering, signing in and out, the session cookie and the login rate limits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from sqlalchemy import select

from portal.accounts import service
from portal.accounts.models import Merchant, User
from portal.config import load_config
from portal.extensions import db
from portal.keys.models import ApiKey
from tests.conftest import PASSWORD, csrf_token, sign_in
from tests.helpers import (
    HX,
    assert_fragment,
    assert_full_page,
    confirmation_path,
    count,
    field_errors,
    html,
    text,
)

BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
KEYS = "/settings/api-keys"
INBOX = "/auth/check-inbox"


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings a test asks for with `parametrize("app_config", [...], indirect=True)`."""
    return getattr(request, "param", {})


def submit(client: FlaskClient, url: str, data: dict[str, str], htmx: bool = False, **kw: Any):  # noqa: ANN201
    """Post a form with the CSRF token of the page it is on."""
    token = csrf_token(client, url)
    return client.post(url, data={"csrf_token": token, **data}, headers=HX if htmx else {}, **kw)


def login(
    client: FlaskClient, email: str, password: str, ip: str = "127.0.0.1", url: str = "/auth/login"
):  # noqa: ANN201
    """Post the login form from a given client address."""
    token = csrf_token(client, "/auth/login")
    return client.post(
        url,
        data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def signed_in_as(client: FlaskClient) -> str | None:
    """The email the portal shows for this browser, or None when it is signed out."""
    response = client.get(KEYS)
    if response.status_code != 200:
        return None
    return text(html(response).find(class_="account").find(class_="muted"))


# --- register -------------------------------------------------------------------------------


@BOTH
def test_register_page(client: FlaskClient, htmx: bool) -> None:
    response = client.get("/auth/register", headers=HX if htmx else {})

    assert response.status_code == 200
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    labels = [text(label) for label in soup.find("form").find_all("label")]
    assert labels == ["Store name", "Email", "Password"]


@BOTH
def test_sign_up_sends_everyone_to_check_their_inbox(client: FlaskClient, htmx: bool) -> None:
    response = submit(
        client,
        "/auth/register",
        {"store_name": "Corner Shop", "email": "Me@Corner.test", "password": "long enough pw"},
        htmx=htmx,
    )

    if htmx:
        assert response.status_code == 204
        assert response.headers["HX-Redirect"] == INBOX
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == INBOX
    page = html(client.get(INBOX))
    assert text(page.find("h1")) == "Check your inbox"
    assert "me@corner.test" in text(page.find(id="check-inbox"))
    # The store exists, unconfirmed, and nobody is signed in until they sign in themselves.
    assert (count(Merchant), count(User)) == (1, 1)
    assert db.session.scalar(select(User)).email_confirmed_at is None
    assert signed_in_as(client) is None


def _sign_up(client: FlaskClient, email: str, htmx: bool = False) -> tuple[Any, str]:
    """Sign up as a new browser would; the answer and the inbox page it leads to."""
    response = submit(
        client,
        "/auth/register",
        {"store_name": "Another Shop", "email": email, "password": "another long pw"},
        htmx=htmx,
    )
    page = text(html(client.get(INBOX)).find("main"))
    return response, page


@BOTH
def test_sign_up_does_not_reveal_that_an_email_is_registered(
    app: Flask, user: User, mailbox: Any, htmx: bool
) -> None:
    taken, taken_page = _sign_up(app.test_client(), "Owner@Shop.test", htmx)
    new, new_page = _sign_up(app.test_client(), "newcomer@shop.test", htmx)

    # The same answer: status, headers that matter, and the same page but for the address.
    assert taken.status_code == new.status_code
    assert taken.headers.get("Location") == new.headers.get("Location")
    assert taken.headers.get("HX-Redirect") == new.headers.get("HX-Redirect")
    assert taken.get_data() == new.get_data()
    assert taken_page.replace("owner@shop.test", "X") == new_page.replace("newcomer@shop.test", "X")
    # The mails differ: the owner hears someone tried; the newcomer gets a link to confirm.
    welcome, attempt, confirm = mailbox()  # the fixture's owner was welcomed first
    assert attempt["To"] == "owner@shop.test"
    assert attempt["Subject"] == "Someone tried to sign up with your email"
    assert "/auth/login" in attempt.get_body(("plain",)).get_content()
    assert "/auth/confirm" not in attempt.get_body(("plain",)).get_content()
    assert confirm["To"] == "newcomer@shop.test"
    assert confirm["Subject"] == "Confirm your email for the merchant key portal"
    # Nothing changed for the existing account: no second store, same password.
    assert count(Merchant) == 2
    assert signed_in_as_after_login(app, "owner@shop.test", PASSWORD) == "owner@shop.test"


def test_both_sign_ups_hash_the_password_once(
    app: Flask, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The slow part of a sign-up is the argon2 hash: a registered email pays it too.
    hashed: list[str] = []
    real = service.hash_password
    monkeypatch.setattr(service, "hash_password", lambda pw: hashed.append(pw) or real(pw))

    _sign_up(app.test_client(), "owner@shop.test")
    _sign_up(app.test_client(), "newcomer@shop.test")

    assert hashed == ["another long pw", "another long pw"]


def signed_in_as_after_login(app: Flask, email: str, password: str) -> str | None:
    """Who a fresh browser is after signing in with these credentials."""
    browser = app.test_client()
    login(browser, email, password)
    return signed_in_as(browser)


def test_an_unconfirmed_store_can_look_around_but_not_create_keys(
    app: Flask, client: FlaskClient, mailbox: Any
) -> None:
    _sign_up(client, "newcomer@shop.test")
    assert signed_in_as_after_login(app, "newcomer@shop.test", "another long pw")
    login(client, "newcomer@shop.test", "another long pw")

    keys_page = html(client.get(KEYS))
    assert "Confirm your email address to create API keys" in text(
        keys_page.find(id="confirm-banner")
    )
    for htmx in (False, True):
        refused = client.get("/settings/api-keys/new", headers=HX if htmx else {})
        assert refused.status_code == 403
        assert "Confirm your email first" in text(html(refused).find("h1"))
    token = csrf_token(client, "/auth/login")  # the session's token
    posted = client.post(
        "/settings/api-keys/new",
        data={"csrf_token": token, "key_type": "publishable", "label": "Shop"},
    )
    assert posted.status_code == 403
    assert count(ApiKey) == 0

    # The mailed link confirms the address; the banner goes and keys can be made.
    [mail] = mailbox()
    confirmed = client.get(confirmation_path(mail))
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"] == KEYS
    keys_page = html(client.get(KEYS))
    assert keys_page.find(id="confirm-banner") is None
    assert "Your email is confirmed" in text(keys_page.find(class_="flashes"))
    assert client.get("/settings/api-keys/new").status_code == 200


def test_the_link_confirms_from_a_signed_out_browser_too(
    app: Flask, client: FlaskClient, mailbox: Any
) -> None:
    _sign_up(client, "newcomer@shop.test")
    [mail] = mailbox()

    response = app.test_client().get(confirmation_path(mail))

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert db.session.scalar(select(User)).email_confirmed_at is not None


@pytest.mark.parametrize(
    "token",
    ["", "nonsense", "WzEsIm5ld2NvbWVyQHNob3AudGVzdCJd.AAAAAA.forged", "\x00"],
    ids=["empty", "nonsense", "forged", "nul"],
)
def test_a_bad_link_confirms_nothing(client: FlaskClient, mailbox: Any, token: str) -> None:
    _sign_up(client, "newcomer@shop.test")

    response = client.get("/auth/confirm", query_string={"token": token})

    assert response.status_code == 400
    assert "This link does not work" in text(html(response).find("h1"))
    assert db.session.scalar(select(User)).email_confirmed_at is None


def test_a_link_older_than_3_days_confirms_nothing(
    client: FlaskClient, mailbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    four_days_ago = int(time.time()) - 4 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: four_days_ago)
    _sign_up(client, "newcomer@shop.test")
    monkeypatch.undo()
    [mail] = mailbox()

    response = client.get(confirmation_path(mail))

    assert response.status_code == 400
    assert db.session.scalar(select(User)).email_confirmed_at is None


def test_signing_up_again_unconfirmed_mails_a_link_that_works(
    app: Flask, client: FlaskClient, mailbox: Any
) -> None:
    _sign_up(client, "newcomer@shop.test")
    _sign_up(app.test_client(), "newcomer@shop.test")

    first, again = mailbox()
    assert again["Subject"] == "Someone tried to sign up with your email"
    assert app.test_client().get(confirmation_path(again)).status_code == 303
    assert db.session.scalar(select(User)).email_confirmed_at is not None
    assert count(Merchant) == 1


def test_sign_up_mails_to_a_registered_address_are_limited(
    app: Flask, user: User, mailbox: Any
) -> None:
    answers = [_sign_up(app.test_client(), "owner@shop.test")[0].status_code for _ in range(5)]

    assert answers == [303] * 5  # the page never changes
    assert len(mailbox()) == 1 + 3  # the welcome, then SIGN_UP_MAILS_PER_EMAIL: 3 an hour


def test_a_new_link_can_be_asked_for(app: Flask, client: FlaskClient, mailbox: Any) -> None:
    _sign_up(client, "newcomer@shop.test")
    login(client, "newcomer@shop.test", "another long pw")
    token = csrf_token(client, "/auth/login")  # the session's token

    response = client.post("/auth/confirm/resend", data={"csrf_token": token})

    assert response.status_code == 303
    first, second = mailbox()
    assert second["Subject"] == first["Subject"]
    assert "We sent a new link" in text(html(client.get(KEYS)).find(class_="flashes"))
    assert client.post("/auth/confirm/resend", data={}).status_code == 400  # CSRF
    assert len(mailbox()) == 2


def test_a_confirmed_owner_has_no_banner(client: FlaskClient, user: User) -> None:
    sign_in(client, user.email)

    page = html(client.get(KEYS))

    assert page.find(id="confirm-banner") is None
    assert client.get("/settings/api-keys/new").status_code == 200


@BOTH
@pytest.mark.parametrize(
    ("fields", "name", "message"),
    [
        ({"email": "nope"}, "email", "valid email"),
        ({"email": ""}, "email", "required"),
        ({"password": "short"}, "password", "at least 10"),
        ({"store_name": ""}, "store_name", "required"),
        # argon2 (passlib) refuses more than 4,096 bytes: these were 500s
        ({"password": "x" * 4097}, "password", "at most 1,024 characters"),
        ({"password": "€" * 1025}, "password", "at most 1,024 characters"),
        # PostgreSQL text cannot hold U+0000: these were 500s
        ({"store_name": "Corner\x00Shop"}, "store_name", "U+0000"),
        ({"email": "new\x00@shop.test"}, "email", "valid email"),
    ],
    ids=[
        "bad-email",
        "no-email",
        "short-password",
        "no-store-name",
        "4097-password",
        "long-utf8-password",
        "nul-store-name",
        "nul-email",
    ],
)
def test_register_errors_are_shown_beside_their_field(
    client: FlaskClient, user: User, fields: dict[str, str], name: str, message: str, htmx: bool
) -> None:
    data = {"store_name": "Shop", "email": "new@shop.test", "password": "long enough pw", **fields}

    response = submit(client, "/auth/register", data, htmx=htmx)

    assert response.status_code == 422
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    assert message in field_errors(soup, name)
    assert (count(Merchant), count(User)) == (1, 1)
    assert signed_in_as(client) is None


def test_register_keeps_what_was_typed_but_never_the_password(client: FlaskClient) -> None:
    response = submit(
        client,
        "/auth/register",
        {"store_name": "Kept", "email": "kept@shop.test", "password": "short"},
    )

    soup = html(response)
    assert soup.find("input", attrs={"name": "store_name"})["value"] == "Kept"
    assert soup.find("input", attrs={"name": "email"})["value"] == "kept@shop.test"
    assert not soup.find("input", attrs={"name": "password"}).get("value")


# --- login ----------------------------------------------------------------------------------


@BOTH
def test_login_signs_in(client: FlaskClient, user: User, htmx: bool) -> None:
    response = submit(
        client, "/auth/login", {"email": "Owner@Shop.test", "password": PASSWORD}, htmx=htmx
    )

    if htmx:
        assert (response.status_code, response.headers["HX-Redirect"]) == (204, KEYS)
    else:
        assert (response.status_code, response.headers["Location"]) == (303, KEYS)
    assert signed_in_as(client) == user.email


@BOTH
@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("owner@shop.test", "wrong password"),
        ("nobody@shop.test", PASSWORD),
        # Too long for argon2: was a 500 for a known email and a 422 for an unknown one.
        ("owner@shop.test", "x" * 4097),
        ("nobody@shop.test", "x" * 4097),
        ("owner@shop.test", "€" * 2000),
    ],
    ids=["wrong-password", "unknown-email", "4097-known", "4097-unknown", "6000-bytes-known"],
)
def test_login_with_wrong_credentials_says_so_beside_the_password(
    client: FlaskClient, user: User, email: str, password: str, htmx: bool
) -> None:
    response = submit(client, "/auth/login", {"email": email, "password": password}, htmx=htmx)

    assert response.status_code == 422
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    assert field_errors(soup, "password") == "The email or password is not right."
    assert soup.find("input", attrs={"name": "email"})["value"] == email
    assert signed_in_as(client) is None


def test_an_email_with_a_nul_byte_is_just_not_right(client: FlaskClient, user: User) -> None:
    response = submit(client, "/auth/login", {"email": "owner@shop.test\x00", "password": PASSWORD})

    assert response.status_code == 422
    assert field_errors(html(response), "password") == "The email or password is not right."
    assert signed_in_as(client) is None


@pytest.mark.parametrize(
    "app_config", [{"REGISTER_LIMIT_PER_IP": "3/minute"}], indirect=True, ids=["3-a-minute"]
)
def test_registering_is_rate_limited_per_address(client: FlaskClient) -> None:
    def register(n: int, ip: str) -> int:
        token = csrf_token(client, "/auth/register")
        data = {"store_name": f"Shop {n}", "email": f"s{n}@shop.test", "password": "long enough pw"}
        response = client.post(
            "/auth/register", data={"csrf_token": token, **data}, environ_base={"REMOTE_ADDR": ip}
        )
        return response.status_code

    statuses = [register(n, "192.0.2.40") for n in range(5)]

    assert statuses == [303, 303, 303, 429, 429]
    assert count(Merchant) == 3
    assert register(9, "192.0.2.41") == 303  # another address is not slowed
    assert count(Merchant) == 4


def test_registering_is_limited_by_default(tmp_path: Path) -> None:
    # 24 sign-ups in 4 s (each a 64 MiB argon2 hash) took the server down: a few a minute is plenty.
    limit = load_config(tmp_path, environ={})["REGISTER_LIMIT_PER_IP"]

    per_minute = int(limit.split(";")[0].split("/")[0])
    assert limit.split(";")[0].endswith("/minute") and per_minute <= 10


def test_a_settings_page_sends_you_to_login_and_back(client: FlaskClient, user: User) -> None:
    response = client.get("/settings/audit?before=5")

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/settings/audit?before%3D5"
    after = login(client, user.email, PASSWORD, url=response.headers["Location"])
    assert after.status_code == 303
    assert after.headers["Location"] == "/settings/audit?before=5"


@pytest.mark.parametrize(
    ("next_url", "destination"),
    [
        ("/settings/markets", "/settings/markets"),
        ("/settings/api-keys?type=secret", "/settings/api-keys?type=secret"),
        ("//evil.com", KEYS),
        ("//evil.com/settings", KEYS),
        ("https://evil.com", KEYS),
        ("http://evil.com/settings/api-keys", KEYS),
        ("/\\evil.com", KEYS),
        ("\\\\evil.com", KEYS),
        ("/\t/evil.com", KEYS),
        ("/\n/evil.com", KEYS),
        ("javascript:alert(1)", KEYS),
        ("evil.com", KEYS),
        ("", KEYS),
        # Headers are Latin-1: a raw "€" in HX-Redirect was a 500; it travels percent-encoded.
        ("/settings/api-keys?label=Café€", "/settings/api-keys?label=Caf%C3%A9%E2%82%AC"),
        ("/settings/api-keys?label=✓", "/settings/api-keys?label=%E2%9C%93"),
    ],
)
@BOTH
def test_login_honours_only_a_local_next(
    client: FlaskClient, user: User, next_url: str, destination: str, htmx: bool
) -> None:
    token = csrf_token(client, "/auth/login")

    response = client.post(
        "/auth/login",
        query_string={"next": next_url},
        data={"csrf_token": token, "email": user.email, "password": PASSWORD},
        headers=HX if htmx else {},
    )

    location = response.headers["HX-Redirect" if htmx else "Location"]
    assert location == destination


# --- logout ---------------------------------------------------------------------------------


@BOTH
def test_logout_ends_the_session_and_every_copy_of_its_cookie(
    app: Flask, signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    copied = signed_in.get_cookie("session", domain="portal.test")
    assert copied is not None
    thief = app.test_client()
    thief.set_cookie("session", copied.value, domain="portal.test")
    assert signed_in_as(thief) == user.email

    response = signed_in.post(
        "/auth/logout",
        data={"csrf_token": csrf_token(signed_in, "/settings/markets")},
        headers=HX if htmx else {},
    )

    if htmx:
        assert (response.status_code, response.headers["HX-Redirect"]) == (204, "/auth/login")
    else:
        assert (response.status_code, response.headers["Location"]) == (303, "/auth/login")
    assert "You are signed out." in text(html(signed_in.get("/auth/login")))
    for browser in (signed_in, thief):
        page = browser.get(KEYS)
        assert page.status_code == 302
        assert page.headers["Location"].startswith("/auth/login")


def test_logout_needs_a_post(signed_in: FlaskClient, user: User) -> None:
    assert signed_in.get("/auth/logout").status_code == 405
    assert signed_in_as(signed_in) == user.email


def test_signing_in_again_after_logout_works(signed_in: FlaskClient, user: User) -> None:
    signed_in.post("/auth/logout", data={"csrf_token": csrf_token(signed_in, "/settings/markets")})

    sign_in(signed_in, user.email)

    assert signed_in_as(signed_in) == user.email


# --- the session cookie ---------------------------------------------------------------------


def test_the_session_cookie_is_http_only_and_same_site_lax(client: FlaskClient, user: User) -> None:
    response = login(client, user.email, PASSWORD)

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip() == "SameSite=Lax"
    assert "secure" not in attributes  # development serves plain http; production sets Secure


def test_signing_in_starts_a_fresh_session(client: FlaskClient, user: User) -> None:
    csrf_token(client, "/auth/login")
    anonymous = client.get_cookie("session", domain="portal.test")

    login(client, user.email, PASSWORD)

    assert client.get_cookie("session", domain="portal.test").value != anonymous.value


# --- login rate limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "app_config",
    [{"LOGIN_LIMIT_PER_ACCOUNT": "3/minute", "LOGIN_LIMIT_PER_IP": "100/minute"}],
    indirect=True,
)
def test_login_is_rate_limited_per_account_and_address(
    client: FlaskClient, user: User, other_user: User
) -> None:
    statuses = [
        login(client, user.email, "wrong password", ip="198.51.100.7").status_code for _ in range(3)
    ]
    assert statuses == [422, 422, 422]

    blocked = login(client, user.email.upper(), PASSWORD, ip="198.51.100.7")

    assert blocked.status_code == 429
    assert "Too many attempts" in text(html(blocked))
    assert signed_in_as(client) is None
    # Another account from that address is not this account's attempts.
    assert login(client, other_user.email, PASSWORD, ip="198.51.100.7").status_code == 303


def test_wrong_passwords_from_anywhere_do_not_lock_the_owner_out(
    client: FlaskClient, user: User, tmp_path: Path
) -> None:
    # The production limits (5 per account and address, 20 per address, per minute): an attacker
    # sends 12 wrong passwords for the owner's email; the owner signs in from their own address.
    limits = load_config(tmp_path, environ={})
    client.application.config.update(
        LOGIN_LIMIT_PER_ACCOUNT=limits["LOGIN_LIMIT_PER_ACCOUNT"],
        LOGIN_LIMIT_PER_IP=limits["LOGIN_LIMIT_PER_IP"],
    )
    attacker = [
        login(client, user.email, f"guess number {n}", ip="203.0.113.66").status_code
        for n in range(12)
    ]

    owner = login(client, user.email, PASSWORD, ip="198.51.100.20")

    assert attacker == [422] * 5 + [429] * 7
    assert owner.status_code == 303
    assert signed_in_as(client) == user.email


@pytest.mark.parametrize(
    "app_config",
    [{"LOGIN_LIMIT_PER_ACCOUNT": "100/minute", "LOGIN_LIMIT_PER_IP": "3/minute"}],
    indirect=True,
)
def test_login_is_rate_limited_per_address(client: FlaskClient, user: User) -> None:
    statuses = [
        login(client, f"guess{n}@shop.test", PASSWORD, ip="192.0.2.10").status_code
        for n in range(3)
    ]
    assert statuses == [422, 422, 422]

    assert login(client, user.email, PASSWORD, ip="192.0.2.10").status_code == 429
    assert login(client, user.email, PASSWORD, ip="192.0.2.11").status_code == 303


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ACCOUNT": "2/minute"}], indirect=True)
def test_showing_the_login_page_is_not_limited(client: FlaskClient, user: User) -> None:
    for _ in range(5):
        assert client.get("/auth/login").status_code == 200
    assert login(client, user.email, PASSWORD).status_code == 303
