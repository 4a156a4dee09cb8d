"""An owner requires two-factor sign-in of every member: only owners, only with it on themselves,
after the password, audited; members without it are sent to set-up from every page."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import Merchant, User
from portal.extensions import db
from portal.twofactor import service
from tests.conftest import csrf_token, sign_in
from tests.factories import PASSWORD, make_key
from tests.helpers import HX, html, row_counts, text
from tests.twofactor.conftest import Clock, TwoFactor, sign_in_with_code, turn_on
from tests.twofactor.test_views import audit_sentences

REQUIRE = "/account/two-factor/require"
SETUP = "/account/two-factor"


def _require(client: FlaskClient, value: str = "on", htmx: bool = False, **extra: str):  # noqa: ANN202
    token = csrf_token(client, "/auth/login")
    return client.post(
        REQUIRE, data={"csrf_token": token, "required": value, **extra}, headers=HX if htmx else {}
    )


def _required(merchant_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(Merchant, merchant_id).require_two_factor


@pytest.fixture
def owner_factor(user: User, clock: Clock) -> TwoFactor:
    """The owner of Shop One with two-factor sign-in on."""
    return turn_on(user, clock)


@pytest.fixture
def developer(user: User) -> User:
    """A developer of Shop One, without two-factor sign-in."""
    return accounts.add_member(user.email, "dev@shop.test", "developer", PASSWORD).user


@pytest.fixture
def required(user: User, owner_factor: TwoFactor) -> None:
    """Shop One requires two-factor sign-in."""
    service.set_requirement(accounts.membership_of(user.merchant_id, user.id), True)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_an_owner_without_two_factor_cannot_require_it(
    clock: Clock, signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    before = row_counts()

    response = _require(signed_in, htmx=htmx)

    assert response.status_code == 422
    errors = html(response).find(id="required-error")
    assert "your own account first" in text(errors)
    assert not _required(user.merchant_id)
    assert row_counts() == before


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_owner_requires_it_after_the_password(
    client: FlaskClient, user: User, owner_factor: TwoFactor, clock: Clock, htmx: bool
) -> None:
    sign_in_with_code(client, user.email, owner_factor, clock)
    clock.now += 11 * 60

    asked = _require(client, htmx=htmx)
    assert asked.status_code == 401 and not _required(user.merchant_id)

    done = _require(client, htmx=htmx, reauth_password=PASSWORD)

    assert done.status_code == (200 if htmx else 303)
    assert _required(user.merchant_id)
    assert (
        audit_sentences(client)[0] == "Required two-factor sign-in for every member of the store."
    )
    assert "requires two-factor sign-in" in text(html(client.get(SETUP)))

    lifted = _require(client, "off", htmx=htmx)

    assert lifted.status_code == (200 if htmx else 303)
    assert not _required(user.merchant_id)
    assert audit_sentences(client)[0] == (
        "Stopped requiring two-factor sign-in: members may sign in with their password only."
    )


@pytest.mark.parametrize("role", ["admin", "developer", "viewer"])
def test_only_owners_change_the_requirement(
    client: FlaskClient, user: User, clock: Clock, role: str
) -> None:
    member = accounts.add_member(user.email, f"{role}@shop.test", role, PASSWORD).user
    factor = turn_on(member, clock)
    sign_in_with_code(client, member.email, factor, clock)
    before = row_counts()

    response = _require(client)

    assert response.status_code == 403
    assert not _required(user.merchant_id)
    assert row_counts() == before
    assert html(client.get(SETUP)).find("button", string=lambda s: "Require" in (s or "")) is None


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/settings/api-keys",
        "/settings/api-keys/new",
        "/settings/members",
        "/settings/audit",
        "/settings/store",
        "/settings/webhooks",
        "/settings/usage",
        "/settings/markets",
        "/settings/customers",
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_member_without_two_factor_is_sent_to_set_up(
    client: FlaskClient, developer: User, required: None, path: str, htmx: bool
) -> None:
    sign_in(client, developer.email)

    response = client.get(path, headers=HX if htmx else {})

    if htmx:
        assert response.status_code == 204 and response.headers["HX-Redirect"] == SETUP
    else:
        assert response.status_code in (302, 303) and response.headers["Location"] in (
            SETUP,
            "/settings/api-keys",  # "/" sends to the keys first
        )


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_post_without_two_factor_changes_nothing(
    client: FlaskClient, user: User, developer: User, required: None, htmx: bool
) -> None:
    key, _ = make_key(user, "publishable")
    sign_in(client, developer.email)
    before = row_counts()

    response = client.post(
        f"/settings/api-keys/{key.id}/revoke",
        data={"csrf_token": csrf_token(client, SETUP)},
        headers=HX if htmx else {},
    )

    assert response.status_code == (204 if htmx else 303)
    assert (response.headers.get("HX-Redirect") or response.headers["Location"]) == SETUP
    assert row_counts() == before


def test_the_set_up_page_says_why_and_sign_out_still_works(
    client: FlaskClient, developer: User, required: None
) -> None:
    sign_in(client, developer.email)

    page = html(client.get(SETUP))

    assert "Shop One requires two-factor sign-in for every member. Set it up to go on." in text(
        page
    )
    stylesheet = client.get("/static/css/portal.css")
    assert stylesheet.status_code == 200
    stylesheet.close()
    signed_out = client.post("/auth/logout", data={"csrf_token": csrf_token(client, SETUP)})
    assert signed_out.headers["Location"] == "/auth/login"


def test_switching_to_a_store_that_does_not_require_it(
    client: FlaskClient, developer: User, other_user: User, required: None
) -> None:
    accounts.add_member(other_user.email, developer.email, "viewer")
    sign_in(client, developer.email)

    switched = client.post(
        "/settings/switch-store",
        data={"csrf_token": csrf_token(client, SETUP), "merchant_id": other_user.merchant_id},
    )

    assert switched.status_code == 303
    assert client.get("/settings/api-keys").status_code == 200


def test_after_setting_it_up_the_member_goes_on(
    client: FlaskClient, developer: User, required: None, clock: Clock
) -> None:
    sign_in(client, developer.email)
    factor = turn_on(developer, clock)  # as the set-up page would (this ends the session)
    sign_in_with_code(client, developer.email, factor, clock)

    assert client.get("/settings/api-keys").status_code == 200


def test_turning_off_while_required_is_refused(
    client: FlaskClient, user: User, owner_factor: TwoFactor, required: None, clock: Clock
) -> None:
    sign_in_with_code(client, user.email, owner_factor, clock)
    page = html(client.get(SETUP))
    assert page.find("button", string="Turn off two-factor sign-in") is None

    response = client.post(
        "/account/two-factor/disable", data={"csrf_token": csrf_token(client, SETUP)}
    )

    assert response.status_code == 422
    assert "Shop One requires two-factor sign-in" in text(html(response).find(id="disable-error"))
    db.session.expire_all()
    assert db.session.get(User, user.id).two_factor_enabled


def test_the_audit_filter_lists_the_two_factor_actions(
    client: FlaskClient, user: User, owner_factor: TwoFactor, required: None, clock: Clock
) -> None:
    sign_in_with_code(client, user.email, owner_factor, clock)

    page = html(client.get("/settings/audit?action=two_factor_required"))

    options = {option["value"] for option in page.select("select[name=action] option")}
    assert {"two_factor_enabled", "two_factor_required", "recovery_code_used"} <= options
    assert [" ".join(c.get_text().split()) for c in page.select("td.sentence")] == [
        "Required two-factor sign-in for every member of the store."
    ]


def test_an_app_without_the_requirement_is_untouched(app: Flask, client: FlaskClient) -> None:
    """A store that does not require it: members without it use every page (the default)."""
    user = accounts.register(accounts.NewAccount("plain@shop.test", PASSWORD, "Plain"))
    sign_in(client, user.email)

    assert client.get("/settings/members").status_code == 200
