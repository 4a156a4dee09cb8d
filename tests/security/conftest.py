"""What the route attacks need: the portal's routes from the url_map, and bodies to post.

The `victim` fixture (a merchant with a market and a key) is in tests/conftest.py."""

from __future__ import annotations

from typing import Any

from flask import Flask

# Every portal blueprint; the API (`api`) and `static` answer for themselves.
PORTAL_BLUEPRINTS = ("web", "accounts", "keys", "usage")
PUBLIC_ENDPOINTS = {
    "web.index",
    "accounts.login",
    "accounts.register",
    "accounts.logout",
    "accounts.check_inbox",  # after sign-up, before any sign-in
    "accounts.confirm_email",  # the mailed link may be opened signed out
}


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
