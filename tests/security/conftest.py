"""Fixtures of the attack tests: a victim merchant with a market and a key, and row counts."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.keys.models import ApiKey

# Every portal blueprint; the API (`api`) and `static` answer for themselves.
PORTAL_BLUEPRINTS = ("web", "accounts", "keys", "usage")
PUBLIC_ENDPOINTS = {"web.index", "accounts.login", "accounts.register", "accounts.logout"}


def portal_rules(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, rule, method) for every route of the portal blueprints, from the url_map."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in PORTAL_BLUEPRINTS:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, rule.rule, method))
    return sorted(found)


def fill(rule: str, ids: dict[str, int | str]) -> str:
    """A rule with its arguments replaced by `ids` (`<int:key_id>` -> ids["key_id"])."""
    for name, value in ids.items():
        rule = rule.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    assert "<" not in rule, f"no id to put in {rule}: teach this test the new argument"
    return rule


def row_counts() -> dict[str, int]:
    """The number of rows in every table of the database."""
    db.session.expire_all()
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def key_state(key_id: int) -> dict[str, Any]:
    """Every column of a key, to show a request changed nothing about it."""
    db.session.expire_all()
    key = db.session.get(ApiKey, key_id)
    return {column.name: getattr(key, column.key) for column in ApiKey.__mapper__.columns}


@pytest.fixture
def victim(user: User) -> dict[str, int | str]:
    """`user`'s merchant with a market and a key in it: the ids an attacker would try (and the
    idempotency token of the form that made a key, whose reveal page another merchant tries)."""
    from portal.keys import service as keys
    from tests.conftest import make_key

    market = accounts.add_market(user.merchant_id, "US", "United States")
    key, _ = make_key(user, "secret", label="Victim's key", market_id=market.id)
    keys.create_key(
        user.merchant_id,
        "secret",
        keys.KeySettings(label="Victim's revealed key"),
        keys.Actor(name=user.email, user_id=user.id),
        request=keys.RevealRequest("victim-request-token", user.id, keys.new_pad()),
    )
    return {"key_id": key.id, "market_id": market.id, "request_token": "victim-request-token"}


def form_body(endpoint: str) -> dict[str, Any]:
    """A body that would change something through `endpoint`'s form, if the request got through."""
    if endpoint == "accounts.register":
        return {**FORM_BODY, "email": "new-store@shop.test"}
    return FORM_BODY


FORM_BODY = {
    "key_type": "secret",
    "label": "Taken over",
    "rate_limit": "10000",
    "scopes": ["orders:write"],
    "grace": "now",
    "code": "EU",
    "name": "Europe",
    "store_name": "Forged store",
    "email": "owner@shop.test",
    "password": "correct horse battery",
}
