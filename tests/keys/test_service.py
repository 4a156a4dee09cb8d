"""The key service on a real, migrated database: the key lifecycle's rules and its audit log."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from portal.accounts import service as accounts
from portal.accounts.models import Market, User
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys
from portal.keys import tokens
from portal.keys.models import ApiKey, AuditEvent
from portal.keys.scopes import DEFAULT_SCOPES, SCOPES
from tests.conftest import make_key
from tests.helpers import snapshot

TOKEN_PATTERN = re.compile(r"^(pk|sk)_live_[0-9A-Za-z]{32}[0-9A-Za-z]{6}$")
SECRET_ONLY = [name for name, scope in SCOPES.items() if scope.secret_only]


def actor_of(user: User, ip: str | None = "203.0.113.7") -> keys.Actor:
    """The user as the audit log records them."""
    return keys.Actor(name=user.email, user_id=user.id, ip=ip)


def events(key: ApiKey, action: str | None = None) -> list[AuditEvent]:
    """The key's audit events, oldest first."""
    query = select(AuditEvent).where(AuditEvent.api_key_id == key.id).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def set_columns(key: ApiKey, **values: Any) -> None:
    """Move a key through time by editing its timestamps directly."""
    for name, value in values.items():
        setattr(key, name, value)
    db.session.commit()


@pytest.fixture
def market(user: User) -> Market:
    """A market of `user`'s merchant."""
    return accounts.add_market(user.merchant_id, "US", "United States")


@pytest.fixture
def foreign_market(other_user: User) -> Market:
    """A market of another merchant."""
    return accounts.add_market(other_user.merchant_id, "EU", "Europe")


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("key_type", "prefix"), [("publishable", "pk"), ("secret", "sk")])
def test_create_returns_a_well_formed_token_with_a_valid_checksum(
    user: User, key_type: str, prefix: str
) -> None:
    key, token = make_key(user, key_type)

    assert TOKEN_PATTERN.match(token) and token.startswith(f"{prefix}_live_")
    parsed = tokens.parse_token(token)
    assert parsed is not None and parsed.key_type == key_type
    assert key.masked == f"{prefix}_live_…{token[-4:]}"


def test_a_secret_key_is_stored_only_as_its_hmac_hash(app, user: User) -> None:
    key, token = make_key(user, "secret")

    assert key.key_hash == tokens.hash_token(token, app.config["API_KEY_PEPPER"])
    assert key.publishable_token is None
    for table in ("api_keys", "audit_events"):
        for row in db.session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
            assert not any(token in str(value) for value in row), f"token stored in {table}"
            assert not any(token[8:-4] in str(value) for value in row)


def test_a_publishable_key_keeps_its_token_so_it_can_be_shown_again(user: User) -> None:
    key, token = make_key(user, "publishable")

    assert key.publishable_token == token


@pytest.mark.parametrize("key_type", ["publishable", "secret"])
def test_create_applies_the_spec_defaults(user: User, key_type: str) -> None:
    key, _ = keys.create_key(
        user.merchant_id, key_type, keys.KeySettings(label="Defaults"), actor_of(user)
    )

    assert key.scopes == list(DEFAULT_SCOPES[key_type])
    assert key.rate_limit == 60
    assert key.market_id is None and key.expires_at is None
    assert key.state == keys.STATE_ACTIVE
    assert key.created_by_name == user.email and key.created_by_id == user.id


def test_create_records_who_created_it_from_where(user: User) -> None:
    key, _ = keys.create_key(
        user.merchant_id, "secret", keys.KeySettings(label="Sync"), actor_of(user, "198.51.100.4")
    )

    [created] = events(key)
    assert created.action == "created"
    assert created.actor == user.email and created.actor_user_id == user.id
    assert created.ip == "198.51.100.4"
    assert created.merchant_id == user.merchant_id


def test_create_normalises_and_deduplicates_origins(user: User) -> None:
    key, _ = make_key(
        user,
        "publishable",
        allowed_origins=[
            "HTTPS://Shop.Example.com:443/",
            "https://shop.example.com",
            "",
            "  http://localhost:3000 ",
            "https://*.Example.com",
        ],
    )

    assert key.allowed_origins == [
        "https://shop.example.com",
        "http://localhost:3000",
        "https://*.example.com",
    ]


def test_create_normalises_and_deduplicates_ip_ranges(user: User) -> None:
    key, _ = make_key(user, "secret", allowed_ip_ranges=["203.0.113.0/24", "203.0.113.0/24", "::1"])

    assert key.allowed_ip_ranges == ["203.0.113.0/24", "::1/128"]


def test_create_deduplicates_scopes_in_registry_order(user: User) -> None:
    key, _ = make_key(user, "secret", scopes=["orders:write", "catalog:read", "orders:write"])

    assert key.scopes == ["catalog:read", "orders:write"]


def test_create_for_a_market_of_the_merchant(user: User, market: Market) -> None:
    key, _ = make_key(user, "publishable", market_id=market.id)

    assert key.market == market


INVALID_SETTINGS = [
    pytest.param("secret", {"label": ""}, "label", "Enter a label", id="empty-label"),
    pytest.param("secret", {"label": "   "}, "label", "Enter a label", id="blank-label"),
    pytest.param("secret", {"label": "x" * 81}, "label", "at most 80", id="81-char-label"),
    pytest.param("secret", {"rate_limit": 0}, "rate_limit", "from 1 to 10,000", id="limit-0"),
    pytest.param("secret", {"rate_limit": 10_001}, "rate_limit", "1 to 10,000", id="limit-10001"),
    pytest.param("secret", {"rate_limit": None}, "rate_limit", "whole number", id="limit-none"),
    pytest.param(
        "secret",
        {"expires_at": "past"},
        "expires_at",
        "in the future",
        id="expiry-in-the-past",
    ),
    *[
        pytest.param(
            "publishable", {"scopes": ["catalog:read", name]}, "scopes", name, id=f"pk-{name}"
        )
        for name in SECRET_ONLY
    ],
    pytest.param("secret", {"scopes": ["admin:all"]}, "scopes", "admin:all", id="unknown-scope"),
    pytest.param(
        "publishable",
        {"allowed_origins": ["https://ok.example.com", "ftp://shop.example.com"]},
        "allowed_origins-1",
        "",
        id="bad-origin-scheme",
    ),
    pytest.param(
        "publishable",
        {"allowed_origins": ["https://shop.example.com/path"]},
        "allowed_origins-0",
        "",
        id="origin-with-path",
    ),
    pytest.param(
        "secret",
        {"allowed_ip_ranges": ["10.0.0.0/8", "10.0.0.1/8"]},
        "allowed_ip_ranges-1",
        "did you mean 10.0.0.0/8",
        id="cidr-host-bits",
    ),
    pytest.param(
        "secret",
        {"allowed_ip_ranges": ["not-an-ip"]},
        "allowed_ip_ranges-0",
        "CIDR",
        id="cidr-garbage",
    ),
    pytest.param(
        "secret",
        {"allowed_origins": ["https://shop.example.com"]},
        "allowed_origins",
        "publishable keys",
        id="origins-on-secret",
    ),
    pytest.param(
        "publishable",
        {"allowed_ip_ranges": ["203.0.113.0/24"]},
        "allowed_ip_ranges",
        "secret keys",
        id="ip-ranges-on-publishable",
    ),
    pytest.param("secret", {"market_id": "foreign"}, "market_id", "your markets", id="foreign"),
    pytest.param("secret", {"market_id": 999_999}, "market_id", "your markets", id="no-market"),
]


@pytest.mark.parametrize(("key_type", "settings", "field", "message"), INVALID_SETTINGS)
def test_create_rejects_invalid_settings_and_writes_nothing(
    user: User,
    foreign_market: Market,
    key_type: str,
    settings: dict[str, Any],
    field: str,
    message: str,
) -> None:
    settings = {"label": "A key", **settings}
    if settings.get("market_id") == "foreign":
        settings["market_id"] = foreign_market.id
    if settings.get("expires_at") == "past":
        settings["expires_at"] = utcnow() - timedelta(minutes=1)
    before = snapshot()

    with pytest.raises(keys.KeyInvalid) as raised:
        keys.create_key(user.merchant_id, key_type, keys.KeySettings(**settings), actor_of(user))

    assert field in raised.value.errors, raised.value.errors
    assert message in " ".join(raised.value.errors[field])
    db.session.rollback()
    assert snapshot() == before


def test_create_reports_every_problem_at_once(user: User) -> None:
    with pytest.raises(keys.KeyInvalid) as raised:
        keys.create_key(
            user.merchant_id,
            "publishable",
            keys.KeySettings(
                label="", rate_limit=0, allowed_origins=["nope", "https://ok.test", "also bad"]
            ),
            actor_of(user),
        )

    assert set(raised.value.errors) == {
        "label",
        "rate_limit",
        "allowed_origins-0",
        "allowed_origins-2",
    }


@pytest.mark.parametrize("limit", [1, 60, 10_000])
def test_rate_limit_bounds_are_inclusive(user: User, limit: int) -> None:
    key, _ = make_key(user, "secret", rate_limit=limit)

    assert key.rate_limit == limit


def test_an_80_character_label_is_allowed(user: User) -> None:
    key, _ = make_key(user, "secret", label="x" * 80)

    assert key.label == "x" * 80


# --- update ---------------------------------------------------------------------------------


def test_update_changes_settings_but_not_the_key(user: User, market: Market) -> None:
    key, token = make_key(user, "publishable", allowed_origins=["https://a.example.com"])
    key_hash, masked = key.key_hash, key.masked
    expiry = (utcnow() + timedelta(days=30)).replace(second=0, microsecond=0)

    keys.update_key(
        key,
        keys.KeySettings(
            label="Renamed",
            description="Now with a description",
            scopes=["catalog:read"],
            market_id=market.id,
            allowed_origins=["https://B.example.com"],
            rate_limit=600,
            expires_at=expiry,
        ),
        actor_of(user),
    )

    db.session.refresh(key)
    assert (key.key_hash, key.masked, key.publishable_token) == (key_hash, masked, token)
    assert key.label == "Renamed" and key.description == "Now with a description"
    assert key.scopes == ["catalog:read"] and key.market_id == market.id
    assert key.allowed_origins == ["https://b.example.com"]
    assert key.rate_limit == 600 and key.expires_at == expiry


def test_update_audits_each_change_with_before_and_after(user: User) -> None:
    key, _ = make_key(user, "secret", label="Old", rate_limit=60)

    keys.update_key(
        key,
        keys.KeySettings(label="New", scopes=list(key.scopes), rate_limit=120),
        actor_of(user, "192.0.2.1"),
    )

    [updated] = events(key, "updated")
    assert updated.details["changes"] == {
        "label": {"from": "Old", "to": "New"},
        "rate_limit": {"from": 60, "to": 120},
    }
    assert updated.actor == user.email and updated.ip == "192.0.2.1"


def test_update_without_changes_logs_nothing(user: User) -> None:
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=3))

    keys.update_key(key, keys.settings_of(key), actor_of(user))

    assert events(key, "updated") == []


def test_update_with_the_expiry_as_a_form_shows_it_is_not_a_change(user: User) -> None:
    # The edit form shows the expiry to the minute; posting it back unchanged changes nothing.
    expiry = utcnow() + timedelta(days=3, seconds=17)
    key, _ = make_key(user, "secret", expires_at=expiry)
    settings = keys.settings_of(key)
    settings.expires_at = expiry.replace(second=0, microsecond=0)

    keys.update_key(key, settings, actor_of(user))

    assert events(key, "updated") == []
    assert key.expires_at == expiry


def test_update_rejects_invalid_settings_and_keeps_the_key(user: User) -> None:
    key, _ = make_key(user, "publishable", label="Keep me")
    before = snapshot()

    with pytest.raises(keys.KeyInvalid):
        keys.update_key(key, keys.KeySettings(label="", scopes=["orders:read"]), actor_of(user))

    db.session.rollback()
    db.session.refresh(key)
    assert key.label == "Keep me" and key.scopes == list(DEFAULT_SCOPES["publishable"])
    assert snapshot() == before


# --- rotate ---------------------------------------------------------------------------------

INHERITED = (
    "key_type",
    "mode",
    "label",
    "description",
    "scopes",
    "market_id",
    "allowed_origins",
    "allowed_ip_ranges",
    "rate_limit",
    "expires_at",
    "merchant_id",
)


@pytest.mark.parametrize(
    ("key_type", "settings"),
    [
        (
            "publishable",
            {
                "description": "Web shop",
                "scopes": ["catalog:read"],
                "allowed_origins": ["https://shop.example.com", "https://*.example.net"],
                "rate_limit": 250,
            },
        ),
        (
            "secret",
            {
                "description": "Sync",
                "scopes": ["orders:read", "orders:write", "analytics:read"],
                "allowed_ip_ranges": ["203.0.113.0/24"],
                "rate_limit": 9000,
            },
        ),
    ],
)
def test_rotated_key_inherits_every_setting(
    user: User, market: Market, key_type: str, settings: dict[str, Any]
) -> None:
    old, old_token = make_key(
        user,
        key_type,
        market_id=market.id,
        expires_at=utcnow() + timedelta(days=20),
        **settings,
    )

    new, token = keys.rotate_key(old, "24h", actor_of(user))

    assert token != old_token and tokens.parse_token(token) is not None
    assert new.id != old.id and new.key_hash != old.key_hash
    for name in INHERITED:
        assert getattr(new, name) == getattr(old, name), name
    assert old.replaced_by == new
    assert keys.rotated_from(new) == old


def test_rotate_now_stops_the_old_key_at_once(user: User) -> None:
    old, _ = make_key(user, "secret")

    new, _ = keys.rotate_key(old, "now", actor_of(user))

    assert old.state == keys.STATE_REVOKED and old.revoked_at <= utcnow()
    assert new.state == keys.STATE_ACTIVE
    assert [event.action for event in events(old)] == ["created", "rotated", "revoked"]
    assert [event.action for event in events(new)] == ["created"]
    assert events(new)[0].details["rotated_from"] == old.id


@pytest.mark.parametrize(
    ("grace", "period"),
    [("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7))],
)
def test_rotate_with_grace_keeps_the_old_key_until_the_period_ends(
    user: User, grace: str, period: timedelta
) -> None:
    old, _ = make_key(user, "secret")
    before = utcnow()

    keys.rotate_key(old, grace, actor_of(user))

    after = utcnow()
    assert before + period <= old.revoked_at <= after + period
    assert old.state == keys.STATE_ACTIVE
    assert old.retiring_at == old.revoked_at
    assert old.state_at(before + period - timedelta(seconds=1)) == keys.STATE_ACTIVE
    assert old.state_at(after + period + timedelta(seconds=1)) == keys.STATE_REVOKED
    assert events(old, "revoked") == []
    [rotated] = events(old, "rotated")
    assert rotated.details["grace"] == keys.GRACE_LABELS[grace]


@pytest.mark.parametrize("grace", ["1h", "24h", "7d"])
def test_rotation_never_extends_the_old_keys_expiry(user: User, grace: str) -> None:
    expires_at = utcnow() + timedelta(minutes=30)
    old, _ = make_key(user, "secret", expires_at=expires_at)

    new, _ = keys.rotate_key(old, grace, actor_of(user))

    assert old.revoked_at == expires_at
    assert new.expires_at == expires_at


def test_rotate_rejects_an_unknown_grace_period(user: User) -> None:
    old, _ = make_key(user, "secret")
    before = snapshot()

    with pytest.raises(keys.KeyInvalid) as raised:
        keys.rotate_key(old, "forever", actor_of(user))

    assert "grace" in raised.value.errors
    assert snapshot() == before and old.revoked_at is None


def test_a_key_in_its_grace_period_cannot_be_rotated_again(user: User) -> None:
    old, _ = make_key(user, "secret")
    keys.rotate_key(old, "1h", actor_of(user))
    stops_at = old.revoked_at
    before = snapshot()

    with pytest.raises(keys.KeyNotActive):
        keys.rotate_key(old, "7d", actor_of(user))

    db.session.rollback()
    assert old.revoked_at == stops_at
    assert snapshot() == before


def test_revoking_a_key_in_its_grace_period_stops_it_now(user: User) -> None:
    old, _ = make_key(user, "secret")
    keys.rotate_key(old, "7d", actor_of(user))

    keys.revoke_key(old, actor_of(user))

    assert old.state == keys.STATE_REVOKED


# --- revoke ---------------------------------------------------------------------------------


def test_revoke_is_immediate_and_audited(user: User) -> None:
    key, _ = make_key(user, "publishable")

    keys.revoke_key(key, actor_of(user, "192.0.2.44"))

    assert key.state == keys.STATE_REVOKED and key.revoked_at <= utcnow()
    assert key.revoked_by_name == user.email
    [revoked] = events(key, "revoked")
    assert (revoked.actor, revoked.ip, revoked.actor_user_id) == (
        user.email,
        "192.0.2.44",
        user.id,
    )


def test_revoke_cannot_be_repeated(user: User) -> None:
    key, _ = make_key(user, "secret")
    keys.revoke_key(key, actor_of(user))
    revoked_at = key.revoked_at
    before = snapshot()

    with pytest.raises(keys.KeyNotActive):
        keys.revoke_key(key, actor_of(user))

    assert key.revoked_at == revoked_at and snapshot() == before


def _revoked(user: User) -> ApiKey:
    key, _ = make_key(user, "secret")
    return keys.revoke_key(key, actor_of(user))


def _expired(user: User) -> ApiKey:
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    set_columns(key, expires_at=utcnow() - timedelta(seconds=1))
    return key


@pytest.mark.parametrize("make_stopped", [_revoked, _expired], ids=["revoked", "expired"])
def test_stopped_keys_cannot_be_edited_or_rotated(user: User, make_stopped) -> None:  # noqa: ANN001
    key = make_stopped(user)
    before = snapshot()

    with pytest.raises(keys.KeyNotActive):
        keys.update_key(key, keys.KeySettings(label="Revived"), actor_of(user))
    with pytest.raises(keys.KeyNotActive):
        keys.rotate_key(key, "now", actor_of(user))

    db.session.rollback()
    assert key.label != "Revived" and key.replaced_by_id is None
    assert snapshot() == before


def test_an_expired_key_is_expired_and_can_still_be_revoked(user: User) -> None:
    key = _expired(user)

    assert key.state == keys.STATE_EXPIRED
    keys.revoke_key(key, actor_of(user))
    assert key.state == keys.STATE_REVOKED


# --- lifecycle events -----------------------------------------------------------------------


def test_expiry_is_logged_exactly_once(user: User) -> None:
    key = _expired(user)

    assert keys.record_lifecycle_events(user.merchant_id) == 1
    assert keys.record_lifecycle_events(user.merchant_id) == 0

    [expired] = events(key, "expired")
    assert expired.actor == "system"


def test_the_end_of_a_grace_period_is_logged_once_as_revoked(user: User) -> None:
    old, _ = make_key(user, "secret")
    keys.rotate_key(old, "1h", actor_of(user))
    assert keys.record_lifecycle_events(user.merchant_id) == 0

    set_columns(old, revoked_at=utcnow() - timedelta(seconds=1))
    assert keys.record_lifecycle_events(user.merchant_id) == 1
    assert keys.record_lifecycle_events(user.merchant_id) == 0

    [revoked] = events(old, "revoked")
    assert revoked.details == {"reason": "grace period ended"}
    assert events(old, "expired") == []


def test_a_revoked_key_that_passes_its_expiry_logs_nothing_more(user: User) -> None:
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    keys.revoke_key(key, actor_of(user))
    set_columns(key, expires_at=utcnow() - timedelta(seconds=1))

    assert keys.record_lifecycle_events(user.merchant_id) == 0
    assert events(key, "expired") == []


def test_lifecycle_events_are_per_merchant(user: User, other_user: User) -> None:
    key = _expired(user)

    assert keys.record_lifecycle_events(other_user.merchant_id) == 0
    assert events(key, "expired") == []


# --- list, get and audit --------------------------------------------------------------------


@pytest.fixture
def assorted_keys(user: User, market: Market) -> dict[str, ApiKey]:
    """Keys of every type and state, one of them for a market."""
    publishable, _ = make_key(user, "publishable", label="Storefront", market_id=market.id)
    secret, _ = make_key(user, "secret", label="Sync")
    revoked = _revoked(user)
    expired = _expired(user)
    return {"publishable": publishable, "secret": secret, "revoked": revoked, "expired": expired}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"publishable", "secret", "revoked", "expired"}),
        ({"key_type": "publishable"}, {"publishable"}),
        ({"key_type": "secret"}, {"secret", "revoked", "expired"}),
        ({"state": "active"}, {"publishable", "secret"}),
        ({"state": "revoked"}, {"revoked"}),
        ({"state": "expired"}, {"expired"}),
        ({"market_id": "market"}, {"publishable"}),
        ({"key_type": "secret", "state": "active"}, {"secret"}),
        ({"key_type": "secret", "market_id": "market"}, set()),
    ],
)
def test_list_filters_by_type_state_and_market(
    user: User,
    market: Market,
    assorted_keys: dict[str, ApiKey],
    filters: dict[str, Any],
    expected: set[str],
) -> None:
    if filters.get("market_id") == "market":
        filters["market_id"] = market.id
    listed = keys.list_keys(user.merchant_id, **filters)

    assert {key.id for key in listed} == {assorted_keys[name].id for name in expected}


def test_list_is_newest_first_and_only_the_merchants(user: User, other_user: User) -> None:
    first, _ = make_key(user, "secret", label="first")
    second, _ = make_key(user, "secret", label="second")
    make_key(other_user, "secret", label="theirs")

    assert [key.label for key in keys.list_keys(user.merchant_id)] == ["second", "first"]
    assert first.id < second.id


def test_get_key_of_another_merchant_is_not_found(user: User, other_user: User) -> None:
    key, _ = make_key(user, "secret")

    assert keys.get_key(user.merchant_id, key.id) == key
    with pytest.raises(keys.KeyNotFound):
        keys.get_key(other_user.merchant_id, key.id)


def test_audit_events_are_newest_first_per_merchant_and_paginate(
    user: User, other_user: User
) -> None:
    key, _ = make_key(user, "secret")
    keys.update_key(key, keys.KeySettings(label="Two", scopes=list(key.scopes)), actor_of(user))
    keys.revoke_key(key, actor_of(user))
    make_key(other_user, "secret")

    mine = keys.audit_events(user.merchant_id)
    assert [event.action for event in mine] == ["revoked", "updated", "created"]
    assert [event.action for event in keys.audit_events(user.merchant_id, limit=2)] == [
        "revoked",
        "updated",
    ]
    older = keys.audit_events(user.merchant_id, before_id=mine[1].id)
    assert [event.action for event in older] == ["created"]


def test_count_keys_by_market(user: User, market: Market) -> None:
    make_key(user, "publishable", market_id=market.id)
    make_key(user, "secret", market_id=market.id)
    make_key(user, "secret")

    assert keys.count_keys_by_market(user.merchant_id) == {market.id: 2, None: 1}


def test_expiring_soon_flags_active_keys_within_seven_days(user: User) -> None:
    soon, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=6))
    later, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=8))
    never, _ = make_key(user, "secret")

    assert [keys.expiring_soon(key) for key in (soon, later, never)] == [True, False, False]
