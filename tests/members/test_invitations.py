"""The members page: invite by mail (single-use link, 7 days), accept, resend, revoke, change a
role, remove a member; every change in the audit log with the member who made it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import Membership, User
from portal.database import utcnow
from portal.extensions import db
from portal.keys.models import AuditEvent
from portal.members.models import Invitation
from tests.conftest import csrf_token, sign_in
from tests.factories import PASSWORD, make_key
from tests.helpers import (
    HX,
    assert_fragment,
    assert_full_page,
    field_errors,
    html,
    row_counts,
    text,
)

MEMBERS = "/settings/members"


def form_post(
    client: FlaskClient, url: str, data: dict[str, str] | None = None, htmx: bool = False
):  # noqa: ANN201
    """Post a form with the session's CSRF token."""
    form = {"csrf_token": csrf_token(client, "/auth/login"), **(data or {})}
    return client.post(url, data=form, headers=HX if htmx else {})


def invite(client: FlaskClient, email: str, role: str, htmx: bool = False):  # noqa: ANN201
    """Send the invite form."""
    return form_post(client, f"{MEMBERS}/invite", {"email": email, "role": role}, htmx)


def audit_actions(merchant_id: int) -> list[tuple[str, str]]:
    """(action, actor) of the store's member events, oldest first."""
    db.session.expire_all()
    events = db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.merchant_id == merchant_id).order_by(AuditEvent.id)
    )
    return [(event.action, event.actor) for event in events if event.action.startswith("member")]


@pytest.fixture
def owner(client: FlaskClient, user: User) -> User:
    """The store's owner, signed in."""
    sign_in(client, user.email)
    return user


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_an_invited_developer_joins_and_works_in_the_store(
    app: Flask,
    client: FlaskClient,
    owner: User,
    mailbox: Callable[[], list[EmailMessage]],
    last_link: Callable[[], str],
    htmx: bool,
) -> None:
    response = invite(client, "Dev@Shop.test", "developer", htmx)

    assert response.status_code == (200 if htmx else 303)
    page = html(client.get(MEMBERS))
    assert "dev@shop.test" in text(page.find("h2", string="Pending invitations").find_next("table"))
    mail = mailbox()[-1]
    assert mail["To"] == "dev@shop.test" and "Shop One" in mail["Subject"]

    guest = app.test_client()
    link = last_link()
    accept_page = html(guest.get(link))
    assert "owner@shop.test invited dev@shop.test as developer" in text(accept_page)
    token = csrf_token(guest, link)
    joined = guest.post(link, data={"csrf_token": token, "password": PASSWORD})

    assert joined.status_code == 303
    assert guest.get("/settings/api-keys/new").status_code == 200
    dev = accounts.find_user("dev@shop.test")
    assert [(m.merchant_id, m.role) for m in dev.memberships] == [(owner.merchant_id, "developer")]
    assert audit_actions(owner.merchant_id) == [
        ("member_invited", "owner@shop.test"),
        ("member_joined", "dev@shop.test"),
    ]


def test_an_invitation_link_works_once(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    invite(client, "dev@shop.test", "developer")
    link = last_link()
    guest = app.test_client()
    guest.post(link, data={"csrf_token": csrf_token(guest, link), "password": PASSWORD})
    before = row_counts()

    again = app.test_client().get(link)

    assert again.status_code == 404
    assert "used, revoked or has expired" in text(html(again))
    assert row_counts() == before


def test_an_invitation_expires_after_7_days(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    invite(client, "dev@shop.test", "developer")
    link = last_link()
    guest = app.test_client()
    token = csrf_token(guest, link)
    invitation = db.session.scalar(db.select(Invitation))
    assert timedelta(days=6, hours=23) < invitation.expires_at - utcnow() <= timedelta(days=7)
    invitation.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    before = row_counts()

    response = guest.post(link, data={"csrf_token": token, "password": PASSWORD})

    assert response.status_code == 404
    assert row_counts() == before
    assert accounts.find_user("dev@shop.test") is None


def test_resend_replaces_the_link_and_revoke_stops_it(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    invite(client, "dev@shop.test", "viewer")
    first = last_link()
    invitation = db.session.scalar(db.select(Invitation))

    form_post(client, f"{MEMBERS}/invitations/{invitation.id}/resend")
    second = last_link()

    assert second != first
    assert app.test_client().get(first).status_code == 404
    assert app.test_client().get(second).status_code == 200

    form_post(client, f"{MEMBERS}/invitations/{invitation.id}/revoke")

    assert app.test_client().get(second).status_code == 404
    assert [action for action, _ in audit_actions(owner.merchant_id)] == [
        "member_invited",
        "member_invitation_resent",
        "member_invitation_revoked",
    ]


def test_an_existing_account_adds_the_store_and_switches_between_stores(
    app: Flask, client: FlaskClient, owner: User, other_user: User, last_link: Callable[[], str]
) -> None:
    make_key(owner, "secret", label="Shop One's key")
    make_key(other_user, "secret", label="Other Shop's key")
    invite(client, other_user.email, "viewer")
    link = last_link()
    guest = app.test_client()
    token = csrf_token(guest, link)
    assert "already have an account" in text(html(guest.get(link)))

    wrong = guest.post(link, data={"csrf_token": token, "password": "not the password"})

    assert wrong.status_code == 422
    assert "not right" in field_errors(html(wrong), "password")
    assert len(accounts.find_user(other_user.email).memberships) == 1

    guest.post(link, data={"csrf_token": token, "password": PASSWORD})
    token = csrf_token(guest, "/auth/login")  # signing in started a new session
    keys_page = text(html(guest.get("/settings/api-keys")))
    assert "Shop One's key" in keys_page and "Other Shop's key" not in keys_page

    switch = html(guest.get("/settings/api-keys")).find("select", attrs={"name": "merchant_id"})
    options = {option.get_text(): option["value"] for option in switch.find_all("option")}
    assert set(options) == {"Shop One (viewer)", "Other Shop (owner)"}
    switched = guest.post(
        "/settings/switch-store",
        data={"csrf_token": token, "merchant_id": options["Other Shop (owner)"]},
    )
    assert switched.status_code == 303

    keys_page = text(html(guest.get("/settings/api-keys")))
    assert "Other Shop's key" in keys_page and "Shop One's key" not in keys_page


def test_switching_to_a_store_one_is_not_a_member_of_is_404(
    client: FlaskClient, owner: User, other_user: User
) -> None:
    response = form_post(
        client, "/settings/switch-store", {"merchant_id": str(other_user.merchant_id)}
    )

    assert response.status_code == 404
    assert text(html(client.get("/settings/api-keys"))).count("Other Shop") == 0


@pytest.mark.parametrize(
    ("email", "role", "field", "message"),
    [
        ("not-an-email", "viewer", "email", "valid email"),
        ("owner@shop.test", "viewer", "email", "already a member"),
        ("dev@shop.test", "superuser", "role", "Not a valid choice"),
    ],
)
def test_a_bad_invitation_is_refused_next_to_its_field(
    client: FlaskClient,
    owner: User,
    mailbox: Callable[[], list[EmailMessage]],
    email: str,
    role: str,
    field: str,
    message: str,
) -> None:
    before, mails = row_counts(), len(mailbox())

    response = invite(client, email, role)

    assert response.status_code == 422
    invite_form = html(response).find("form", attrs={"action": f"{MEMBERS}/invite"})
    assert message in field_errors(invite_form, field)
    assert row_counts() == before
    assert len(mailbox()) == mails


def _join(
    app: Flask, client: FlaskClient, email: str, role: str, link: Callable[[], str]
) -> FlaskClient:
    """Invite `email` with `role` and accept in a browser of their own, signed in."""
    invite(client, email, role)
    path = link()
    browser = app.test_client()
    browser.post(path, data={"csrf_token": csrf_token(browser, path), "password": PASSWORD})
    return browser


def test_a_role_change_applies_on_the_members_next_request(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    viewer = _join(app, client, "viewer@shop.test", "viewer", last_link)
    assert viewer.get("/settings/api-keys/new").status_code == 403
    member = accounts.membership_of(owner.merchant_id, accounts.find_user("viewer@shop.test").id)

    form_post(client, f"{MEMBERS}/{member.id}/role", {"role": "developer"})

    assert viewer.get("/settings/api-keys/new").status_code == 200
    [event] = [
        e for e in db.session.scalars(db.select(AuditEvent)) if e.action == "member_role_changed"
    ]
    assert event.actor == "owner@shop.test"
    assert event.details["changes"] == {"role": {"from": "viewer", "to": "developer"}}


def test_a_removed_member_is_signed_out_on_the_next_request(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    dev = _join(app, client, "dev@shop.test", "developer", last_link)
    member = accounts.membership_of(owner.merchant_id, accounts.find_user("dev@shop.test").id)

    form_post(client, f"{MEMBERS}/{member.id}/remove")

    response = dev.get("/settings/api-keys")
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login")
    assert db.session.get(Membership, member.id) is None
    assert ("member_removed", "owner@shop.test") in audit_actions(owner.merchant_id)


def test_an_admin_cannot_touch_owners_nor_make_one(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    admin = _join(app, client, "admin@shop.test", "admin", last_link)
    owner_membership = accounts.membership_of(owner.merchant_id, owner.id)
    admin_membership = accounts.membership_of(
        owner.merchant_id, accounts.find_user("admin@shop.test").id
    )
    page = html(admin.get(MEMBERS))
    assert page.find("option", attrs={"value": "owner"}) is None
    before = row_counts()

    form_post(admin, f"{MEMBERS}/{owner_membership.id}/remove")
    form_post(admin, f"{MEMBERS}/{owner_membership.id}/role", {"role": "viewer"})
    form_post(admin, f"{MEMBERS}/{admin_membership.id}/role", {"role": "owner"})
    refused = invite(admin, "boss@shop.test", "owner")

    assert refused.status_code == 422
    db.session.expire_all()
    assert owner_membership.role == "owner" and admin_membership.role == "admin"
    assert row_counts() == before


def test_the_last_owner_cannot_step_down_or_leave(client: FlaskClient, owner: User) -> None:
    membership = accounts.membership_of(owner.merchant_id, owner.id)
    before = row_counts()

    demoted = form_post(client, f"{MEMBERS}/{membership.id}/role", {"role": "admin"})
    form_post(client, f"{MEMBERS}/{membership.id}/remove")

    assert "at least one owner" in text(html(client.get(demoted.headers["Location"])))
    db.session.expire_all()
    assert membership.role == "owner"
    assert row_counts() == before


def test_another_stores_member_is_404(client: FlaskClient, owner: User, other_user: User) -> None:
    theirs = accounts.membership_of(other_user.merchant_id, other_user.id)
    before = row_counts()

    removed = form_post(client, f"{MEMBERS}/{theirs.id}/remove")
    changed = form_post(client, f"{MEMBERS}/{theirs.id}/role", {"role": "viewer"})

    assert removed.status_code == 404 and changed.status_code == 404
    assert row_counts() == before
    assert accounts.membership_of(other_user.merchant_id, other_user.id).role == "owner"


def test_the_members_page_as_htmx_is_a_fragment(client: FlaskClient, owner: User) -> None:
    response = client.get(MEMBERS, headers=HX)

    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True)
    assert "owner@shop.test" in text(html(response))


def test_a_viewer_sees_the_members_but_no_controls(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    viewer = _join(app, client, "viewer@shop.test", "viewer", last_link)

    page = html(viewer.get(MEMBERS))

    assert "owner@shop.test" in text(page)
    assert page.find("form", attrs={"action": f"{MEMBERS}/invite"}) is None
    assert page.find(["a", "button"], string="Remove") is None
    assert "owner@shop.test" in text(page.find("table"))  # the list itself is there


def test_an_unconfirmed_owner_cannot_invite(client: FlaskClient, owner: User) -> None:
    owner.email_confirmed_at = None  # signed up, never opened the confirmation link
    db.session.commit()
    before = row_counts()

    response = invite(client, "dev@shop.test", "developer")

    assert response.status_code == 403
    assert "Confirm your email first" in text(html(response).find("h1"))
    assert row_counts() == before


def test_accepting_an_invitation_confirms_an_unconfirmed_account(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str]
) -> None:
    other = accounts.register(accounts.NewAccount("dev@shop.test", PASSWORD, "Dev's own shop"))
    other.email_confirmed_at = None  # signed up, never confirmed
    db.session.commit()
    invite(client, "dev@shop.test", "developer")
    link = last_link()
    guest = app.test_client()

    joined = guest.post(link, data={"csrf_token": csrf_token(guest, link), "password": PASSWORD})

    assert joined.status_code == 303
    db.session.expire_all()
    assert accounts.find_user("dev@shop.test").email_confirmed_at is not None  # the link proved it


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_remove_asks_first_and_the_confirmation_removes(
    app: Flask, client: FlaskClient, owner: User, last_link: Callable[[], str], htmx: bool
) -> None:
    member = _join(app, client, "dev@shop.test", "developer", last_link)
    row = accounts.membership_of(owner.merchant_id, accounts.find_user("dev@shop.test").id)
    link = html(client.get(MEMBERS)).find("a", attrs={"aria-label": "Remove dev@shop.test"})
    before = row_counts()

    asked = client.get(link["href"], headers=HX if htmx else {})

    assert asked.status_code == 200
    page = assert_fragment(asked) if htmx else assert_full_page(asked)
    assert "Remove dev@shop.test (developer) from Shop One?" in text(page)
    assert row_counts() == before  # asking changes nothing
    assert member.get("/settings/api-keys").status_code == 200
    removed = form_post(client, link["href"], htmx=htmx)
    assert removed.status_code == (200 if htmx else 303)
    assert db.session.get(Membership, row.id) is None
    assert member.get("/settings/api-keys").status_code == 302  # signed out
