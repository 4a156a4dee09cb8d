"""Schemathesis against the API's own OpenAPI document: no 500, every response as documented."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.api.openapi import api_rules, openapi_path
from portal.keys.scopes import SCOPES
from tests.conftest import make_key

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]
SHOPPER = {"email": "fuzz.shopper@example.com", "password": "plum jam on toast", "name": "Fuzz"}
CUSTOMER_TOKEN = "X-Customer-Token"  # noqa: S105 - a header name


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Shopper abuse limits out of the way: the fuzzer checks shapes, not limits (those have
    their own tests), and hundreds of sign-ins from one address would otherwise all be 429."""
    return {
        "CUSTOMER_LIMIT_PER_IP": "100000/minute",
        "CUSTOMER_LIMIT_PER_EMAIL": "100000/minute",
        "CUSTOMER_FAILURES_PER_EMAIL_AND_IP": "100000/minute",
        "CUSTOMER_FAILURES_PER_EMAIL": "100000/minute",
    }


@pytest.fixture
def all_scopes_key(user: User) -> str:
    """A secret key of a store with a market, holding every scope there is."""
    accounts.add_market(user.merchant_id, "US", "United States")
    return make_key(user, "secret", label="Fuzzer", scopes=list(SCOPES), rate_limit=10_000)[1]


def seed_store(client: FlaskClient, headers: dict[str, str]) -> dict[str, list[Any]]:
    """Products, a cart and an order made through the API, so generated cases can hit real ids."""
    products = []
    for number in range(4):
        response = client.post(
            "/api/v1/admin/products",
            json={
                "name": f"Product {number}",
                "price": 1000 + number,
                "currency": "USD",
                "inventory": 50,
                "published": True,
                "markets": ["US"],
            },
            headers=headers,
        )
        assert response.status_code == 201, response.json
        products.append(response.json["id"])
    carts, orders = [], []
    for product_id in products[:2]:
        cart = client.post(
            "/api/v1/carts", json={"items": [{"product_id": product_id}]}, headers=headers
        )
        assert cart.status_code == 201, cart.json
        carts.append(cart.json["id"])
    checkout = client.post(
        "/api/v1/checkouts",
        json={"cart_id": carts[0], "email": "buyer@example.com"},
        headers=headers,
    )
    assert checkout.status_code == 201, checkout.json
    orders.append(client.get("/api/v1/admin/orders", headers=headers).json["data"][0]["id"])

    # A registered shopper with an order of their own, for the shopper operations.
    shopper = client.post("/api/v1/customers", json=SHOPPER, headers=headers)
    assert shopper.status_code == 201, shopper.json
    signed_in = {**headers, CUSTOMER_TOKEN: shopper.json["access_token"]}
    cart = client.post(
        "/api/v1/carts", json={"items": [{"product_id": products[1]}]}, headers=signed_in
    )
    assert cart.status_code == 201, cart.json
    own = client.post(
        "/api/v1/checkouts",
        json={"cart_id": cart.json["id"], "email": SHOPPER["email"]},
        headers=signed_in,
    )
    assert own.status_code == 201, own.json
    orders.append(own.json["order"]["id"])
    return {
        "product_id": products,
        "cart_id": carts,
        "order_id": orders,
        "customer_id": [shopper.json["customer"]["id"]],
    }


def sign_in(client: FlaskClient, headers: dict[str, str], customer_id: int) -> dict[str, str]:
    """A fresh sign-in of the seeded shopper (under the email it has now: the fuzzer's PATCHes
    change it): its access and refresh tokens."""
    email = client.get(f"/api/v1/admin/customers/{customer_id}", headers=headers).json["email"]
    response = client.post(
        "/api/v1/customers/sessions",
        json={"email": email, "password": SHOPPER["password"]},
        headers=headers,
    )
    assert response.status_code == 201, response.json
    return {"access": response.json["access_token"], "refresh": response.json["refresh_token"]}


def test_every_operation_answers_as_documented_and_never_500(
    app: Flask, client: FlaskClient, all_scopes_key: str
) -> None:
    headers = {"Authorization": f"Bearer {all_scopes_key}"}
    known_ids = seed_store(client, headers)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    shopper_tokens: dict[str, str] = {}
    answered: defaultdict[str, set[int]] = defaultdict(set)
    for result in schema.get_all_operations():
        operation = result.ok()
        cases[operation.label] = 0
        # Each operation starts with a working sign-in (an earlier one may have ended it).
        shopper_tokens.update(sign_in(client, headers, known_ids["customer_id"][0]))

        # Valid inputs and, as often, inputs that break the document's schemas (they must get a
        # documented 4xx, never a 500).
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=strategy, data=st.data())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case, data: st.DataObject) -> None:
            cases[case.operation.label] += 1
            # Half the cases aim at objects that exist, the rest at whatever was generated.
            for name in case.path_parameters or {}:
                if name in known_ids and data.draw(st.booleans(), label=f"existing {name}"):
                    case.path_parameters[name] = data.draw(st.sampled_from(known_ids[name]))
            # Half the shopper calls carry the shopper's real tokens, the rest what was generated.
            if CUSTOMER_TOKEN in (case.headers or {}) and data.draw(
                st.booleans(), label="signed in"
            ):
                case.headers[CUSTOMER_TOKEN] = shopper_tokens["access"]
            if (
                isinstance(case.body, dict)
                and "refresh_token" in case.body
                and data.draw(st.booleans(), label="real refresh token")
            ):
                case.body["refresh_token"] = shopper_tokens["refresh"]
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            answered[case.operation.label].add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Exception as error:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.label}: {error}")

    report = "\n".join(
        f"  {count:3d}  {label}  {sorted(answered[label])}"
        for label, count in sorted(cases.items())
    )
    print(
        f"\nschemathesis: {cases.total()} cases over {len(cases)} operations\n{report}"
        f"\n  statuses: {dict(sorted(statuses.items()))}"
    )
    assert not failures, "\n\n".join(failures)
    # Every route, shopper and admin-customer ones included; Schemathesis leaves out the document
    # it was loaded from.
    routes = {f"{method} {openapi_path(rule.rule)}" for rule, method in api_rules(app)}
    assert set(cases) == routes - {"GET /openapi.json"}, "the document lost operations"
    assert all(count > 0 for count in cases.values()), cases
