"""Members' roles: every portal route × every role, allowed or refused (403, nothing changed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import Market, Membership, Merchant, User
from portal.accounts.roles import ENDPOINT_ACCESS, PERMISSIONS, PUBLIC, ROLES, allows
from portal.customers.models import CustomerSession
from portal.extensions import db
from portal.members import service as members_service
from portal.members.models import Invitation
from portal.twofactor import service as two_factor
from portal.twofactor import totp
from portal.twofactor.models import RecoveryCode
from portal.webhooks import delivery as webhook_delivery
from portal.webhooks import service as webhooks
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.conftest import csrf_token, sign_in
from tests.factories import PASSWORD, Victim, make_key, make_user, make_victim
from tests.helpers import HX, html, key_state, row_counts, text
from tests.twofactor.conftest import code_step, password_step


@dataclass(frozen=True)
class Store:
    """A store with a market, a secret and a publishable key, and one member of each role."""

    victim: Victim
    publishable_id: int
    invitation_id: int
    viewer_membership_id: int
    extra_membership_id: int
    webhook_id: int
    delivery_id: int
    members: dict[str, str] = field(default_factory=dict)  # role → email


@pytest.fixture
def store(app: Flask) -> Store:
    """An owner's store, with an admin, a developer and a viewer added to it."""
    owner = make_user("owner@shop.test", "Shop One")
    victim = make_victim(owner)
    publishable, _ = make_key(owner, "publishable", label="Storefront")
    members = {"owner": owner.email}
    memberships = {}
    for role in ROLES[1:]:
        email = f"{role}@shop.test"
        memberships[role] = accounts.add_member(owner.email, email, role, PASSWORD).id
        members[role] = email
    extra = accounts.add_member(owner.email, "extra@shop.test", "viewer", PASSWORD)
    manager = members_service.Manager(accounts.membership_of(owner.merchant_id, owner.id))
    invitation = members_service.invite(manager, "invited@shop.test", "developer")
    webhook, _secret = webhooks.create_endpoint(
        owner.merchant_id, {"url": "http://127.0.0.1:9/hooks", "event_types": ["order.created"]}
    )
    delivery = webhook_delivery.send_test_event(webhook)
    return Store(
        webhook_id=webhook.id,
        delivery_id=delivery.id,
        victim=victim,
        publishable_id=publishable.id,
        invitation_id=invitation.id,
        viewer_membership_id=memberships["viewer"],
        extra_membership_id=extra.id,
        members=members,
    )


@dataclass(frozen=True)
class Route:
    """One request a member can make: endpoint, method, URL and form data."""

    endpoint: str
    method: str
    url: Callable[[Store], str]
    data: dict[str, Any] = field(default_factory=dict)
    # Run after signing in, before the request: more form data the request needs (e.g. a code).
    prepare: Callable[[FlaskClient, str], dict[str, Any]] | None = None

    @property
    def permission(self) -> str | None:
        """What the route needs, from the roles table."""
        return ENDPOINT_ACCESS[self.endpoint].permission_for(self.method)

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint}"


def _key(path: str = "") -> Callable[[Store], str]:
    return lambda store: f"/settings/api-keys/{store.victim.key.id}{path}"


def _webhook(path: str = "") -> Callable[[Store], str]:
    return lambda store: f"/settings/webhooks/{store.webhook_id}{path}"


def _market(store: Store) -> str:
    return f"/settings/markets/{store.victim.market.id}/api-keys"


def _rename_market(store: Store) -> str:
    return f"/settings/markets/{store.victim.market.id}/rename"


def _setup_code(client: FlaskClient, email: str) -> dict[str, Any]:
    """The code of the secret the set-up page offers, as the member's app would show it."""
    client.get("/account/two-factor")
    with client.session_transaction() as session:
        secret = session["two_factor_setup"]
    return {"code": totp.code_at(secret, time.time())}


def _with_two_factor(client: FlaskClient, email: str) -> dict[str, Any]:
    """Two-factor sign-in on for the member, signed in again with both steps."""
    user = accounts.find_user(email)
    secret = totp.new_secret()
    two_factor.enable(user, secret, totp.code_at(secret, time.time() - 30))
    password_step(client, email)
    assert code_step(client, totp.code_at(secret, time.time())).status_code == 303
    return {}


NEW_KEY = {
    "key_type": "secret",
    "label": "Stock sync",
    "scopes": ["products:read"],
    "market_id": "",
    "rate_limit": "60",
}
ROUTES = [
    Route("keys.list_keys", "GET", lambda _: "/settings/api-keys"),
    Route("keys.market_keys", "GET", _market),
    Route("keys.show_key", "GET", _key()),
    Route("keys.new_key", "GET", lambda _: "/settings/api-keys/new"),
    Route("keys.new_key", "POST", lambda _: "/settings/api-keys/new", NEW_KEY),
    Route("keys.edit_key", "GET", _key("/edit")),
    Route(
        "keys.edit_key",
        "POST",
        _key("/edit"),
        {**NEW_KEY, "label": "Renamed", "allowed_ip_ranges-0": ""},
    ),
    Route("keys.rotate_key", "GET", _key("/rotate")),
    Route("keys.rotate_key", "POST", _key("/rotate"), {"grace": "now"}),
    Route("keys.revoke_key", "GET", _key("/revoke")),
    Route("keys.revoke_key", "POST", _key("/revoke")),
    Route(
        "keys.reveal",
        "GET",
        lambda store: f"/settings/api-keys/reveal/{store.victim.request_token}",
    ),
    Route("keys.audit_log", "GET", lambda _: "/settings/audit"),
    Route("keys.audit_csv", "GET", lambda _: "/settings/audit.csv"),
    Route("customers.list_customers", "GET", lambda _: "/settings/customers"),
    Route(
        "customers.show_customer",
        "GET",
        lambda store: f"/settings/customers/{store.victim.customer.id}",
    ),
    Route(
        "customers.sign_out_customer",
        "POST",
        lambda store: f"/settings/customers/{store.victim.customer.id}/sign-out",
    ),
    Route("keys.markets", "GET", lambda _: "/settings/markets"),
    Route("keys.markets", "POST", lambda _: "/settings/markets", {"code": "EU", "name": "Europe"}),
    Route("keys.rename_market", "GET", _rename_market),
    Route(
        "keys.rename_market",
        "POST",
        _rename_market,
        {"name": "United States of America"},
    ),
    Route("usage.overview", "GET", lambda _: "/settings/usage"),
    Route("usage.overview_csv", "GET", lambda _: "/settings/usage.csv"),
    Route("usage.key_usage", "GET", _key("/usage")),
    Route("usage.key_usage_csv", "GET", _key("/usage.csv")),
    Route("settings.store", "GET", lambda _: "/settings/store"),
    Route(
        "settings.store",
        "POST",
        lambda _: "/settings/store",
        {
            "store_name": "Renamed store",
            "support_email": "",
            "storefront_url": "",
            "checkout_hold_minutes": "45",
            "customer_access_minutes": "15",
            "customer_refresh_days": "30",
            "revoke_leaked_keys": "y",
        },
    ),
    Route("webhooks.list_endpoints", "GET", lambda _: "/settings/webhooks"),
    Route("webhooks.show_endpoint", "GET", _webhook()),
    Route("webhooks.new_endpoint", "GET", lambda _: "/settings/webhooks/new"),
    Route(
        "webhooks.new_endpoint",
        "POST",
        lambda _: "/settings/webhooks/new",
        {"url": "http://127.0.0.1:9/other", "event_types": ["order.placed"]},
    ),
    Route("webhooks.edit_endpoint", "GET", _webhook("/edit")),
    Route(
        "webhooks.edit_endpoint",
        "POST",
        _webhook("/edit"),
        {"url": "http://127.0.0.1:9/moved", "event_types": ["order.created"], "description": "x"},
    ),
    Route("webhooks.toggle_endpoint", "POST", _webhook("/toggle")),
    Route("webhooks.test_endpoint", "POST", _webhook("/test")),
    Route("webhooks.rotate_secret", "POST", _webhook("/rotate")),
    Route(
        "webhooks.redeliver",
        "POST",
        lambda store: (
            f"/settings/webhooks/{store.webhook_id}/deliveries/{store.delivery_id}/redeliver"
        ),
    ),
    Route("webhooks.delete_endpoint", "GET", _webhook("/delete")),
    Route("webhooks.delete_endpoint", "POST", _webhook("/delete")),
    Route("members.list_members", "GET", lambda _: "/settings/members"),
    Route(
        "members.invite",
        "POST",
        lambda _: "/settings/members/invite",
        {"email": "new@shop.test", "role": "viewer"},
    ),
    Route(
        "members.change_role",
        "POST",
        lambda store: f"/settings/members/{store.viewer_membership_id}/role",
        {"role": "developer"},
    ),
    Route(
        "members.remove",
        "GET",
        lambda store: f"/settings/members/{store.extra_membership_id}/remove",
    ),
    Route(
        "members.remove",
        "POST",
        lambda store: f"/settings/members/{store.extra_membership_id}/remove",
    ),
    Route(
        "members.resend",
        "POST",
        lambda store: f"/settings/members/invitations/{store.invitation_id}/resend",
    ),
    Route(
        "members.revoke",
        "POST",
        lambda store: f"/settings/members/invitations/{store.invitation_id}/revoke",
    ),
    Route("twofactor.setup", "GET", lambda _: "/account/two-factor"),
    Route("twofactor.setup", "POST", lambda _: "/account/two-factor", prepare=_setup_code),
    Route(
        "twofactor.regenerate",
        "POST",
        lambda _: "/account/two-factor/recovery-codes",
        prepare=_with_two_factor,
    ),
    Route(
        "twofactor.disable",
        "POST",
        lambda _: "/account/two-factor/disable",
        prepare=_with_two_factor,
    ),
    Route(
        "twofactor.require",
        "POST",
        lambda _: "/account/two-factor/require",
        {"required": "on"},
        prepare=_with_two_factor,
    ),
]
MATRIX = [
    pytest.param(
        route,
        role,
        id=f"{route}-{role}-{'allowed' if allows(role, route.permission) else 'denied'}",
    )
    for route in ROUTES
    for role in ROLES
]


def test_every_portal_endpoint_says_who_may_use_it(app: Flask) -> None:
    """A new page without an entry in the roles table is refused to everyone: list it."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    portal = {endpoint for endpoint in endpoints if not endpoint.startswith("api.")}
    assert portal - set(ENDPOINT_ACCESS) == set()
    for access in ENDPOINT_ACCESS.values():
        for permission in (access.read, access.write):
            assert permission is None or permission in PERMISSIONS


def test_the_matrix_covers_every_method_of_every_guarded_endpoint(app: Flask) -> None:
    """Each method of each endpoint that needs a permission is in the matrix below."""
    guarded = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if ENDPOINT_ACCESS.get(rule.endpoint, PUBLIC) is not PUBLIC
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert guarded == {(route.endpoint, route.method) for route in ROUTES}


def _rows(model: Any) -> list[tuple[Any, ...]]:
    """Every column of every row of a table."""
    columns = model.__table__.columns
    return [tuple(row) for row in db.session.execute(db.select(*columns).order_by(columns.id))]


def _db_state(store: Store) -> tuple[Any, ...]:
    """Row counts, both keys, members and invitations: what a refused request leaves as it was."""
    return (
        row_counts(),
        key_state(store.victim.key.id),
        key_state(store.publishable_id),
        _rows(Membership),
        _rows(Market),
        _rows(Invitation),
        _rows(CustomerSession),
        _rows(Merchant),
        _rows(WebhookEndpoint),
        _rows(WebhookDelivery),
        _rows(User),
        _rows(RecoveryCode),
    )


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize(("route", "role"), MATRIX)
def test_role_matrix(
    client: FlaskClient, store: Store, route: Route, role: str, htmx: bool
) -> None:
    sign_in(client, store.members[role])
    extra = route.prepare(client, store.members[role]) if route.prepare else {}
    url = route.url(store)
    headers = HX if htmx else {}
    before = _db_state(store)
    if route.method == "GET":
        response = client.get(url, headers=headers)
    else:
        form = {"csrf_token": csrf_token(client, "/auth/login"), **route.data, **extra}
        response = client.post(url, data=form, headers=headers)

    if allows(role, route.permission) and route.endpoint == "keys.reveal" and role != "owner":
        # A new key is revealed only to the member whose form made it (the owner here).
        assert response.status_code == 404
    elif allows(role, route.permission):
        assert response.status_code in (200, 303), response.get_data(as_text=True)[:500]
        if route.method == "POST":
            assert _db_state(store) != before  # the member's action took effect
    else:
        assert response.status_code == 403
        assert "Your account may not do this" in text(html(response))
        assert _db_state(store) == before


def test_a_viewer_sees_no_buttons_and_no_key_value(client: FlaskClient, store: Store) -> None:
    token = db.session.get(type(store.victim.key), store.publishable_id).publishable_token
    sign_in(client, store.members["viewer"])

    key_page = client.get(f"/settings/api-keys/{store.publishable_id}")
    listing = html(client.get("/settings/api-keys"))
    markets = html(client.get("/settings/markets"))

    assert key_page.status_code == 200
    assert token not in key_page.get_data(as_text=True)
    page = html(key_page)
    for label in ("Edit", "Rotate key", "Revoke key"):
        assert page.find("a", string=label) is None
    assert listing.find("a", string="New API key") is None
    assert markets.find("button", string="Add market") is None


def test_a_developer_sees_the_buttons_and_the_publishable_key(
    client: FlaskClient, store: Store
) -> None:
    token = db.session.get(type(store.victim.key), store.publishable_id).publishable_token
    sign_in(client, store.members["developer"])

    key_page = client.get(f"/settings/api-keys/{store.publishable_id}")

    assert token in key_page.get_data(as_text=True)
    page = html(key_page)
    for label in ("Edit", "Rotate key", "Revoke key"):
        assert page.find("a", string=label) is not None
    assert html(client.get("/settings/api-keys")).find("a", string="New API key") is not None
    # Markets are store settings: a developer reads them but cannot add one.
    assert html(client.get("/settings/markets")).find("button", string="Add market") is None


def test_the_audit_log_names_the_member_who_acted(client: FlaskClient, store: Store) -> None:
    sign_in(client, store.members["developer"])
    token = csrf_token(client, "/auth/login")
    client.post(f"/settings/api-keys/{store.victim.key.id}/revoke", data={"csrf_token": token})

    sign_in(client, store.members["viewer"])
    log = text(html(client.get("/settings/audit")))

    assert "developer@shop.test" in log


def test_the_first_user_of_a_store_is_its_owner(app: Flask) -> None:
    user = make_user("first@shop.test", "First Shop")

    assert [(m.merchant_id, m.role) for m in user.memberships] == [(user.merchant_id, "owner")]


def test_a_store_keeps_at_least_one_owner(store: Store) -> None:
    owner = accounts.find_user(store.members["owner"])

    with pytest.raises(accounts.AccountError, match="at least one owner"):
        accounts.add_member(owner.email, owner.email, "admin")

    db.session.expire_all()
    assert accounts.membership_of(owner.merchant_id, owner.id).role == "owner"


def test_a_member_removed_from_every_store_is_signed_out(client: FlaskClient, store: Store) -> None:
    sign_in(client, store.members["viewer"])
    viewer = accounts.find_user(store.members["viewer"])
    db.session.delete(db.session.get(Membership, viewer.memberships[0].id))
    db.session.commit()

    response = client.get("/settings/api-keys")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")
