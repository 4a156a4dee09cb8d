"""The two-factor pages with the test client, with and without htmx: set-up, the code step of
signing in (expiry, wrong codes, limits), recovery codes, turning off, and attacks on them."""

from __future__ import annotations

import logging
import os
import re
import uuid
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import AuditEvent
from portal.twofactor import totp
from portal.twofactor.models import RecoveryCode as RecoveryCodeRow
from portal.twofactor.views import SETUP_SECRET
from tests.conftest import csrf_token, sign_in
from tests.factories import PASSWORD
from tests.helpers import HX, assert_fragment, assert_full_page, field_errors, html, text
from tests.twofactor.conftest import (
    Clock,
    TwoFactor,
    code_step,
    password_step,
    sign_in_with_code,
    turn_on,
)

SETUP = "/account/two-factor"
CHALLENGE = "/auth/two-factor"


def _secret_on(page: Any) -> str:
    """The secret as the set-up page shows it, without its spaces (as a person types it)."""
    return text(page.find(id="totp-secret")).replace(" ", "")


def _confirm(client: FlaskClient, code: str, htmx: bool = False):  # noqa: ANN202
    token = csrf_token(client, SETUP)
    return client.post(SETUP, data={"csrf_token": token, "code": code}, headers=HX if htmx else {})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def audit_sentences(client: FlaskClient) -> list[str]:
    """The audit log's sentences as they read, newest first."""
    page = html(client.get("/settings/audit"))
    return [" ".join(cell.get_text().split()) for cell in page.select("td.sentence")]


def _is_signed_in(client: FlaskClient) -> bool:
    return client.get("/settings/api-keys").status_code == 200


@pytest.fixture
def member(user: User, clock: Clock) -> TwoFactor:
    """The owner of Shop One, with two-factor sign-in on (signed out)."""
    return turn_on(user, clock)


# Set-up


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_setup_page_shows_a_qr_code_and_the_secret(
    signed_in: FlaskClient, user: User, clock: Clock, htmx: bool
) -> None:
    response = signed_in.get(SETUP, headers=HX if htmx else {})

    page = assert_fragment(response) if htmx else assert_full_page(response)
    svg = page.find("svg")
    assert svg is not None and svg["role"] == "img" and svg.find("path") is not None
    secret = _secret_on(page)
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    with signed_in.session_transaction() as session:
        assert session[SETUP_SECRET] == secret
    assert response.headers["Cache-Control"] == "no-store"
    assert page.find("input", attrs={"name": "code"})["autocomplete"] == "one-time-code"
    # The same secret on a reload (scanned once, typed later).
    assert _secret_on(html(signed_in.get(SETUP))) == secret


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_wrong_confirmation_code_leaves_two_factor_off(
    signed_in: FlaskClient, user: User, clock: Clock, htmx: bool
) -> None:
    secret = _secret_on(html(signed_in.get(SETUP)))

    response = _confirm(signed_in, _wrong(totp.code_at(secret, clock.now)), htmx)

    assert response.status_code == 422
    assert "not right" in field_errors(html(response), "code")
    db.session.expire_all()
    assert not user.two_factor_enabled and user.totp_secret is None
    assert db.session.query(AuditEvent).count() == 0


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_right_code_turns_it_on_and_shows_the_recovery_codes_once(
    signed_in: FlaskClient, user: User, clock: Clock, htmx: bool
) -> None:
    secret = _secret_on(html(signed_in.get(SETUP)))

    response = _confirm(signed_in, totp.code_at(secret, clock.now), htmx)

    assert response.status_code == 200
    page = assert_fragment(response) if htmx else assert_full_page(response)
    codes = [text(code) for code in page.select(".recovery-codes code")]
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    assert "will not be shown again" in text(page)
    copy = page.find("button", string="Copy codes")
    assert page.find(id=copy["data-copy"]).string.split("\n") == codes  # all ten, one a line
    assert response.headers["Cache-Control"] == "no-store"
    db.session.expire_all()
    assert user.two_factor_enabled and user.totp_secret == secret
    with signed_in.session_transaction() as session:
        assert SETUP_SECRET not in session
    # This session goes on; the page now manages it and shows no code again.
    again = signed_in.get(SETUP)
    assert again.status_code == 200
    assert "10 recovery codes" in text(html(again))
    assert not any(code in again.get_data(as_text=True) for code in codes)


def test_turning_on_signs_out_the_other_sessions(
    app: Flask, signed_in: FlaskClient, user: User, clock: Clock
) -> None:
    other = app.test_client()
    sign_in(other, user.email)
    secret = _secret_on(html(signed_in.get(SETUP)))

    _confirm(signed_in, totp.code_at(secret, clock.now))

    assert _is_signed_in(signed_in)
    assert not _is_signed_in(other)


def test_confirming_twice_makes_no_second_set_of_codes(
    signed_in: FlaskClient, user: User, clock: Clock
) -> None:
    secret = _secret_on(html(signed_in.get(SETUP)))
    token = csrf_token(signed_in, SETUP)
    first = signed_in.post(
        SETUP, data={"csrf_token": token, "code": totp.code_at(secret, clock.now)}
    )
    hashes = [row.code_hash for row in db.session.scalars(db.select(RecoveryCodeRow))]

    resent = signed_in.post(
        SETUP, data={"csrf_token": token, "code": totp.code_at(secret, clock.now)}
    )

    assert first.status_code == 200 and resent.status_code == 303
    db.session.expire_all()
    assert [row.code_hash for row in db.session.scalars(db.select(RecoveryCodeRow))] == hashes


# The code step of signing in


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_sign_in_stops_at_the_code_step(
    client: FlaskClient, user: User, member: TwoFactor, htmx: bool
) -> None:
    response = password_step(client, user.email, headers=HX if htmx else {})

    if htmx:
        assert response.status_code == 204 and response.headers["HX-Redirect"] == CHALLENGE
    else:
        assert response.status_code == 303 and response.headers["Location"] == CHALLENGE
    assert not _is_signed_in(client)
    keys = client.get("/settings/api-keys")
    assert keys.status_code == 302 and keys.headers["Location"] == CHALLENGE  # back to the code
    page = client.get(CHALLENGE)
    assert page.status_code == 200
    assert "Enter your code" in text(html(page))
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_right_code_signs_in_and_goes_next(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock, htmx: bool
) -> None:
    token = csrf_token(client, "/auth/login")
    client.post(
        "/auth/login?next=/settings/members",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )

    response = code_step(client, member.code(clock.now), HX if htmx else {})

    if htmx:
        assert response.headers["HX-Redirect"] == "/settings/members"
    else:
        assert response.status_code == 303 and response.headers["Location"] == "/settings/members"
    assert _is_signed_in(client)
    # Signed in with the password just entered: no re-auth for 10 minutes.
    with client.session_transaction() as session:
        assert session["password_at"] == clock.now and "pending_sign_in" not in session


def test_next_never_leaves_the_site(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    token = csrf_token(client, "/auth/login")
    client.post(
        "/auth/login?next=//evil.example/x",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )

    response = code_step(client, member.code(clock.now))

    assert response.headers["Location"] == "/settings/api-keys"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_wrong_code_is_shown_beside_the_field(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock, htmx: bool
) -> None:
    password_step(client, user.email)

    response = code_step(client, _wrong(member.code(clock.now)), HX if htmx else {})

    assert response.status_code == 422
    page = assert_fragment(response) if htmx else assert_full_page(response)
    assert "not right" in field_errors(page, "code")
    assert not _is_signed_in(client)


def test_a_code_cannot_be_replayed(
    app: Flask, client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    code = member.code(clock.now)
    password_step(client, user.email)
    assert code_step(client, code).status_code == 303
    thief = app.test_client()  # saw the code over the member's shoulder, knows the password
    password_step(thief, user.email)
    clock.now += 20

    response = code_step(thief, code)

    assert response.status_code == 422
    assert "already used" in field_errors(html(response), "code")
    assert not _is_signed_in(thief)


def test_the_pending_sign_in_expires_after_5_minutes(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    password_step(client, user.email)
    token = csrf_token(client, CHALLENGE)
    clock.now += 5 * 60 + 1

    response = client.post(CHALLENGE, data={"csrf_token": token, "code": member.code(clock.now)})

    assert response.status_code == 303 and response.headers["Location"] == "/auth/login"
    assert not _is_signed_in(client)
    assert "longer than 5 minutes" in text(html(client.get("/auth/login")))


def test_5_wrong_codes_drop_the_pending_sign_in(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    password_step(client, user.email)
    with client.session_transaction() as session:
        replayed_cookie = dict(session)
    right = member.code(clock.now)
    for attempt in range(4):
        assert code_step(client, _wrong(right)).status_code == 422, attempt

    fifth = code_step(client, _wrong(right))

    assert fifth.status_code == 303 and fifth.headers["Location"] == "/auth/login"
    assert "Too many wrong codes" in text(html(client.get("/auth/login")))
    assert code_step(client, right).headers["Location"] == "/auth/login"
    # The session is a signed cookie: sending the earlier one again does not reset the count.
    with client.session_transaction() as session:
        session.update(replayed_cookie)
    assert code_step(client, right).headers["Location"] == "/auth/login"
    assert not _is_signed_in(client)
    # The password again starts a new pending sign-in, with the right code it signs in.
    password_step(client, user.email)
    assert code_step(client, right).status_code == 303
    assert _is_signed_in(client)


@pytest.mark.parametrize("app_config", [{"TWO_FACTOR_LIMIT_PER_IP": "3/minute"}])
def test_the_code_step_is_limited_per_client_ip(
    app: Flask, user: User, member: TwoFactor, other_user: User, clock: Clock
) -> None:
    turn_on(other_user, clock)
    first, second = app.test_client(), app.test_client()
    password_step(first, user.email)
    password_step(second, other_user.email)  # another account, from the same address

    answers = [code_step(browser, "000000").status_code for browser in (first, first, second)]
    limited = code_step(second, "000000")

    assert answers == [422, 422, 422]
    assert limited.status_code == 429
    assert "Too many attempts" in text(html(limited))
    assert int(limited.headers["Retry-After"]) > 0


@pytest.mark.parametrize("app_config", [{"TWO_FACTOR_LIMIT_PER_ACCOUNT": "2/minute"}])
def test_the_code_step_is_limited_per_user_and_ip(
    app: Flask, client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    password_step(client, user.email)
    assert [code_step(client, "000000").status_code for _ in range(2)] == [422, 422]

    limited = code_step(client, member.code(clock.now))

    assert limited.status_code == 429
    assert not _is_signed_in(client)


def test_a_pending_sign_in_is_no_sign_in_in_another_browser(
    app: Flask, client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    password_step(client, user.email)
    other = app.test_client()

    response = code_step(other, member.code(clock.now))

    assert response.status_code == 303 and response.headers["Location"] == "/auth/login"
    assert not _is_signed_in(other)
    assert other.get(SETUP).status_code == 302
    # The first browser still completes its own sign-in with that code.
    assert code_step(client, member.code(clock.now)).status_code == 303


@pytest.mark.parametrize(
    "path",
    [
        "/settings/api-keys",
        "/settings/members",
        "/settings/audit",
        "/settings/store",
        SETUP,
    ],
)
def test_the_code_step_cannot_be_skipped(
    client: FlaskClient, user: User, member: TwoFactor, path: str
) -> None:
    password_step(client, user.email)

    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"] == CHALLENGE  # the code step, still waiting
    assert not _is_signed_in(client)


def test_the_front_door_is_still_the_sign_in_page(
    client: FlaskClient, user: User, member: TwoFactor
) -> None:
    password_step(client, user.email)

    response = client.get("/")

    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    assert not _is_signed_in(client)


def test_a_forged_session_naming_the_user_signs_nobody_in(
    app: Flask, client: FlaskClient, user: User, member: TwoFactor
) -> None:
    """The pending sign-in holds no sign-in: only `user_id` and `epoch` would, and those are
    written by start_session after the code step alone."""
    password_step(client, user.email)
    with client.session_transaction() as session:
        assert "user_id" not in session and "epoch" not in session
        assert set(session["pending_sign_in"]) == {
            "user_id",
            "epoch",
            "at",
            "id",
            "next",
            "merchant_id",
        }


def test_signing_out_elsewhere_ends_a_pending_sign_in(
    app: Flask, client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    password_step(client, user.email)
    other = app.test_client()
    sign_in_with_code(other, user.email, member, clock)
    other.post("/auth/logout", data={"csrf_token": csrf_token(other, "/auth/login")})
    clock.now += 30

    response = code_step(client, member.code(clock.now))

    assert response.headers["Location"] == "/auth/login"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_recovery_code_signs_in_once(
    app: Flask, client: FlaskClient, user: User, member: TwoFactor, htmx: bool
) -> None:
    code = member.recovery_codes[0]
    password_step(client, user.email)

    response = code_step(client, code.upper(), HX if htmx else {})

    assert response.status_code == (204 if htmx else 303)
    keys = client.get("/settings/api-keys")
    assert keys.status_code == 200  # signed in
    assert "signed in with a recovery code" in text(html(keys)) and "9 left" in text(html(keys))
    again = app.test_client()
    password_step(again, user.email)
    assert code_step(again, code).status_code == 422
    assert audit_sentences(client)[0] == "Signed in with a recovery code; 9 left."


def test_an_invitation_accepted_with_the_password_still_asks_for_the_code(
    app: Flask,
    client: FlaskClient,
    user: User,
    other_user: User,
    clock: Clock,
    mailbox: Any,
) -> None:
    two_factor = turn_on(other_user, clock)
    sign_in(client, user.email)
    token = csrf_token(client, "/settings/members")
    client.post(
        "/settings/members/invite",
        data={"csrf_token": token, "email": other_user.email, "role": "viewer"},
    )
    link = re.search(
        r"/invitations/[A-Za-z0-9_-]+", mailbox()[-1].get_body(("plain",)).get_content()
    )
    invited = app.test_client()
    token = csrf_token(invited, link.group(0))

    response = invited.post(link.group(0), data={"csrf_token": token, "password": PASSWORD})

    assert response.headers["Location"] == CHALLENGE
    assert not _is_signed_in(invited)
    assert code_step(invited, two_factor.code(clock.now)).status_code == 303
    with invited.session_transaction() as session:
        assert session["merchant_id"] == user.merchant_id  # working in the store joined


# Managing it once it is on


def test_new_recovery_codes_need_the_password_and_replace_the_old(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    sign_in_with_code(client, user.email, member, clock)
    clock.now += 11 * 60
    token = csrf_token(client, SETUP)

    asked = client.post("/account/two-factor/recovery-codes", data={"csrf_token": token})
    assert asked.status_code == 401 and "Confirm your password" in text(html(asked))

    shown = client.post(
        "/account/two-factor/recovery-codes",
        data={"csrf_token": token, "reauth_password": PASSWORD},
    )

    assert shown.status_code == 200
    codes = [text(code) for code in html(shown).select(".recovery-codes code")]
    assert len(codes) == 10 and not set(codes) & set(member.recovery_codes)
    assert audit_sentences(client)[0] == (
        "Made new recovery codes; the previous ones no longer work."
    )


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_turning_off_needs_the_password(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock, htmx: bool
) -> None:
    sign_in_with_code(client, user.email, member, clock)
    clock.now += 11 * 60
    token = csrf_token(client, SETUP)
    headers = HX if htmx else {}

    wrong = client.post(
        "/account/two-factor/disable",
        data={"csrf_token": token, "reauth_password": "not it"},
        headers=headers,
    )
    db.session.expire_all()
    assert wrong.status_code == 422 and user.two_factor_enabled

    done = client.post(
        "/account/two-factor/disable",
        data={"csrf_token": token, "reauth_password": PASSWORD},
        headers=headers,
    )

    assert done.status_code == (200 if htmx else 303)
    db.session.expire_all()
    assert not user.two_factor_enabled
    assert audit_sentences(client)[0] == (
        "Turned off two-factor sign-in for their account; their recovery codes no longer work."
    )
    client.post("/auth/logout", data={"csrf_token": token})
    sign_in(client, user.email)  # the password alone again
    assert _is_signed_in(client)


def test_a_missing_csrf_token_changes_nothing(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    sign_in_with_code(client, user.email, member, clock)

    response = client.post("/account/two-factor/disable", data={"reauth_password": PASSWORD})

    assert response.status_code == 400
    db.session.expire_all()
    assert user.two_factor_enabled


def test_the_secret_and_codes_never_reach_the_log(
    client: FlaskClient, user: User, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sign_in(client, user.email)
    secret = _secret_on(html(client.get(SETUP)))
    shown = _confirm(client, totp.code_at(secret, clock.now))
    codes = [text(code) for code in html(shown).select(".recovery-codes code")]
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, SETUP)})
    password_step(client, user.email)
    code_step(client, codes[0])

    logged = caplog.text + repr(
        [(e.action, e.details) for e in db.session.scalars(db.select(AuditEvent))]
    )
    assert secret not in logged
    assert not any(code in logged or code.replace("-", "") in logged for code in codes)


REDIS_URL = os.environ.get("TEST_REDIS_URL")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (Redis); .ci/run sets it")
@pytest.mark.parametrize(
    "app_config",
    [{"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": f"h2fa-{uuid.uuid4().hex}"}],
)
def test_wrong_codes_are_counted_in_the_shared_redis(
    client: FlaskClient, user: User, member: TwoFactor, clock: Clock
) -> None:
    """Several processes share the count: it lives in Redis, not in one process or the cookie."""
    password_step(client, user.email)
    with client.session_transaction() as session:
        pending_id = session["pending_sign_in"]["id"]
    right = member.code(clock.now)
    answers = [code_step(client, _wrong(right)).status_code for _ in range(5)]

    assert answers == [422, 422, 422, 422, 303]
    with redis.Redis.from_url(REDIS_URL) as server:
        [counter] = server.keys(f"*two-factor-sign-in*{pending_id}*")
        assert int(server.get(counter)) == 5
        server.delete(counter)


@pytest.mark.parametrize("app_config", [{"TWO_FACTOR_FAILURES_PER_USER": "7 per hour"}])
def test_wrong_codes_are_limited_per_account_from_every_address(
    app: Flask, user: User, member: TwoFactor, clock: Clock
) -> None:
    """Someone with the password and many addresses: each pending sign-in takes 5 wrong codes,
    but the account takes 7 in all, and then not even the right code is checked."""
    first, second = app.test_client(), app.test_client()
    password_step(first, user.email)
    password_step(second, user.email, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    right = member.code(clock.now)
    for _ in range(4):
        assert code_step(first, _wrong(right)).status_code == 422
    answers = [code_step(second, _wrong(right)).status_code for _ in range(3)]

    assert answers == [422, 422, 422]  # the 7th wrong code of the account
    refused = code_step(second, right)
    assert refused.status_code == 429
    assert "Too many wrong codes for this account" in field_errors(html(refused), "code")
    assert not _is_signed_in(second)
