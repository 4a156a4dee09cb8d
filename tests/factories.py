"""Factories shared by every test package: merchants, keys and products made through the
services, and helpers to call /api/v1 with a key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.accounts import service as accounts
from portal.accounts.models import Market, User
from portal.customers import service as customers
from portal.keys import service as keys
from portal.keys.models import ApiKey
from portal.keys.scopes import SCOPES, scopes_for
from portal.store import service as store
from portal.store.models import Customer, Product

PASSWORD = "correct horse battery"


def make_user(email: str = "owner@shop.test", store: str = "Shop One") -> User:
    """A merchant and its first user, through the accounts service."""
    return accounts.register(accounts.NewAccount(email, PASSWORD, store))


def make_key(user: User, key_type: str = "secret", **settings: Any) -> tuple[Any, str]:
    """A key created through the key service; returns (key, token)."""
    settings.setdefault("label", f"{key_type} key")
    return keys.create_key(
        user.merchant_id,
        key_type,
        keys.KeySettings(**settings),
        keys.Actor(name=user.email, user_id=user.id),
    )


@dataclass(frozen=True)
class Victim:
    """A merchant an attacker aims at: a market, a key in it, and the ids to put in URLs."""

    key: ApiKey
    market: Market
    customer: Customer
    # The idempotency token of the form that made a key, whose reveal page an attacker tries.
    request_token: str = "victim-request-token"

    @property
    def ids(self) -> dict[str, int | str]:
        """The URL arguments that name the victim's objects."""
        return {
            "key_id": self.key.id,
            "market_id": self.market.id,
            "customer_id": self.customer.id,
            "request_token": self.request_token,
        }


def make_victim(user: User) -> Victim:
    """`user`'s merchant with a market US and a secret key "Victim's key" in it, a key made
    through a form (its reveal pending), and a shopper."""
    market = accounts.add_market(user.merchant_id, "US", "United States")
    key, _ = make_key(user, "secret", label="Victim's key", market_id=market.id)
    victim = Victim(
        key=key,
        market=market,
        customer=customers.register(
            user.merchant_id, "victim.shopper@example.com", "plum jam on toast", "Victim Shopper"
        ).customer,
    )
    keys.create_key(
        user.merchant_id,
        "secret",
        keys.KeySettings(label="Victim's revealed key"),
        keys.Actor(name=user.email, user_id=user.id),
        request=keys.RevealRequest(victim.request_token, user.id, keys.new_pad()),
    )
    return victim


API = "/api/v1"
SECRET_SCOPES = [scope.name for scope in scopes_for("secret")]
PUBLISHABLE_SCOPES = [scope.name for scope in scopes_for("publishable")]
ALL_SCOPES = list(SCOPES)


class _Timestamp:
    """Equal to any ISO 8601 UTC timestamp to the second, such as 2026-01-31T12:00:00Z."""

    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(self.pattern.match(other))

    def __repr__(self) -> str:
        return "<timestamp>"


TIMESTAMP: Any = _Timestamp()


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a key."""
    return {"Authorization": f"Bearer {token}"}


def secret_token(user: User, **settings: Any) -> str:
    """A secret key of the user's merchant, with every scope unless told otherwise."""
    settings.setdefault("scopes", SECRET_SCOPES)
    return make_key(user, "secret", **settings)[1]


def publishable_token(user: User, **settings: Any) -> str:
    """A publishable key of the user's merchant, with the storefront scopes."""
    settings.setdefault("scopes", PUBLISHABLE_SCOPES)
    return make_key(user, "publishable", **settings)[1]


def add_product(user: User, **fields: Any) -> Product:
    """A published product of the user's merchant, through the service."""
    body: dict[str, Any] = {
        "name": "Enamel mug",
        "description": "350 ml.",
        "price": 1800,
        "currency": "USD",
        "inventory": 10,
        "published": True,
    }
    body.update(fields)
    return store.create_product(store.Tenant(user.merchant_id), body)


class Api:
    """A test client calling /api/v1 with one key."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        """Send a request to an /api/v1 path with the key."""
        headers = {**bearer(self.token), **kwargs.pop("headers", {})}
        if json is not None:
            kwargs["json"] = json
        return self.client.open(f"{API}{path}", method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET an /api/v1 path."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        """POST JSON to an /api/v1 path."""
        return self.call("POST", path, json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        """PATCH JSON to an /api/v1 path."""
        return self.call("PATCH", path, json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        """DELETE an /api/v1 path."""
        return self.call("DELETE", path, **kwargs)


def error_of(response: TestResponse) -> tuple[int, str, str]:
    """(status, code, message) of an API error response."""
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)
    return response.status_code, body["error"]["code"], body["error"]["message"]
