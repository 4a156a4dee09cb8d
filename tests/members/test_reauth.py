"""Re-authentication: sensitive actions ask for the password when it was not entered in the
last 10 minutes (clock injected), keep what was sent, and carry on after it."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from portal.accounts import permissions
from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import ApiKey
from tests.conftest import csrf_token, sign_in
from tests.factories import PASSWORD, make_key
from tests.helpers import HX, html, key_state, row_counts, text


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The session's clock, frozen until the test moves it."""
    frozen = Clock()
    monkeypatch.setattr(permissions, "now", frozen)
    return frozen


@pytest.fixture
def owner(client: FlaskClient, user: User, clock: Clock) -> User:
    """The owner, signed in (so with a password entered) at the clock's time."""
    sign_in(client, user.email)
    return user


def _submit_the_page(client: FlaskClient, response, password: str, htmx: bool = False):  # noqa: ANN001, ANN201
    """Send the re-auth page's form as a browser would, with `password` typed in."""
    form = html(response).find("input", attrs={"name": "reauth_password"}).find_parent("form")
    data = [
        (field["name"], field.get("value", ""))
        for field in form.find_all("input")
        if field.get("type") == "hidden"
    ]
    data.append(("reauth_password", password))
    return client.post(form["action"], data=MultiDict(data), headers=HX if htmx else {})


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_revoking_a_secret_key_after_10_minutes_asks_for_the_password(
    client: FlaskClient, owner: User, clock: Clock, htmx: bool
) -> None:
    key, _ = make_key(owner, "secret", label="Server")
    clock.now += 10 * 60 + 1
    before = key_state(key.id)
    token = csrf_token(client, "/auth/login")

    asked = client.post(
        f"/settings/api-keys/{key.id}/revoke",
        data={"csrf_token": token},
        headers=HX if htmx else {},
    )

    assert asked.status_code == 401
    assert "Confirm your password" in text(html(asked))
    if htmx:
        assert asked.headers["HX-Retarget"] == "#main"
        assert "<html" not in asked.get_data(as_text=True)
    assert key_state(key.id) == before

    wrong = _submit_the_page(client, asked, "not my password", htmx)
    assert wrong.status_code == 422
    assert "not right" in text(html(wrong))
    assert key_state(key.id) == before

    done = _submit_the_page(client, wrong, PASSWORD, htmx)
    assert done.status_code == (200 if htmx else 303)
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).state == keys.STATE_REVOKED


def test_within_10_minutes_nothing_is_asked(client: FlaskClient, owner: User, clock: Clock) -> None:
    key, _ = make_key(owner, "secret", label="Server")
    clock.now += 10 * 60 - 1

    response = client.post(
        f"/settings/api-keys/{key.id}/revoke",
        data={"csrf_token": csrf_token(client, "/auth/login")},
    )

    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).state == keys.STATE_REVOKED


def test_the_password_counts_again_for_10_minutes_after_re_auth(
    client: FlaskClient, owner: User, clock: Clock
) -> None:
    first, _ = make_key(owner, "secret", label="One")
    second, _ = make_key(owner, "secret", label="Two")
    clock.now += 3600
    token = csrf_token(client, "/auth/login")
    asked = client.post(f"/settings/api-keys/{first.id}/revoke", data={"csrf_token": token})
    _submit_the_page(client, asked, PASSWORD)
    clock.now += 9 * 60

    response = client.post(f"/settings/api-keys/{second.id}/revoke", data={"csrf_token": token})

    assert response.status_code == 303


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_creating_a_secret_key_keeps_the_form_through_re_auth(
    client: FlaskClient, owner: User, clock: Clock, htmx: bool
) -> None:
    clock.now += 3600
    before = row_counts()
    asked = client.post(
        "/settings/api-keys/new",
        data={
            "csrf_token": csrf_token(client, "/settings/api-keys/new"),
            "key_type": "secret",
            "label": "Stock sync <nightly>",
            "description": "Runs at 02:00",
            "scopes": ["products:read", "products:write"],
            "market_id": "",
            "rate_limit": "75",
        },
        headers=HX if htmx else {},
    )
    assert asked.status_code == 401
    assert row_counts() == before

    created = _submit_the_page(client, asked, PASSWORD, htmx)

    # Made once: the reveal dialog for htmx, else 303 to the page that shows the key once.
    assert created.status_code == (200 if htmx else 303)
    [key] = db.session.scalars(db.select(ApiKey)).all()
    assert (key.label, key.description, key.rate_limit) == (
        "Stock sync <nightly>",
        "Runs at 02:00",
        75,
    )
    assert sorted(key.scopes) == ["products:read", "products:write"]


def test_publishable_keys_and_reading_never_ask(
    client: FlaskClient, owner: User, clock: Clock
) -> None:
    clock.now += 3600

    created = client.post(
        "/settings/api-keys/new",
        data={
            "csrf_token": csrf_token(client, "/settings/api-keys/new"),
            "key_type": "publishable",
            "label": "Storefront",
            "scopes": ["catalog:read"],
            "market_id": "",
            "rate_limit": "60",
            "allowed_origins-0": "https://shop.example.com",
        },
    )

    assert created.status_code == 303, [e.get_text() for e in html(created).select(".field-errors")]
    assert "/settings/api-keys/reveal/" in created.headers["Location"]
    assert client.get("/settings/api-keys").status_code == 200


def test_inviting_a_member_asks_for_the_password(
    client: FlaskClient, owner: User, clock: Clock
) -> None:
    clock.now += 3600
    before = row_counts()

    asked = client.post(
        "/settings/members/invite",
        data={
            "csrf_token": csrf_token(client, "/auth/login"),
            "email": "dev@shop.test",
            "role": "developer",
        },
    )

    assert asked.status_code == 401
    assert row_counts() == before
    invited = _submit_the_page(client, asked, PASSWORD)
    assert invited.status_code == 303
    assert row_counts()["invitations"] == 1


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_wrong_passwords_on_the_re_auth_page_are_limited_per_user(
    app: Flask, client: FlaskClient, owner: User, clock: Clock, htmx: bool
) -> None:
    key, _ = make_key(owner, "secret", label="Server")
    clock.now += 3600
    before = key_state(key.id)
    asked = client.post(
        f"/settings/api-keys/{key.id}/revoke",
        data={"csrf_token": csrf_token(client, "/auth/login")},
        headers=HX if htmx else {},
    )
    answers = []
    for _ in range(5):
        asked = _submit_the_page(client, asked, "a guess", htmx)
        answers.append(asked.status_code)

    assert answers == [422, 422, 422, 422, 429]
    assert "Too many wrong passwords" in text(html(asked))
    assert 0 < int(asked.headers["Retry-After"]) <= 600
    # Now even the right password is not checked: guessing on has no use.
    refused = _submit_the_page(client, asked, PASSWORD, htmx)
    assert refused.status_code == 429
    assert html(refused).find("input", attrs={"name": "reauth_password"}) is not None
    assert key_state(key.id) == before

    # The limit is the user's: another member of the store is not held up.
    other = app.test_client()
    colleague = accounts.add_member(owner.email, "admin@shop.test", "admin", PASSWORD)
    sign_in(other, colleague.user.email)
    clock.now += 3600
    asked = other.post(
        f"/settings/api-keys/{key.id}/revoke",
        data={"csrf_token": csrf_token(other, "/auth/login")},
    )
    assert _submit_the_page(other, asked, PASSWORD).status_code == 303
