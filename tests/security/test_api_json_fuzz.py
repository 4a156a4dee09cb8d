"""Hypothesis throws arbitrary JSON at the API's write endpoints: never a 500, always the
SPEC's error shape."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.keys.scopes import SCOPES
from tests.conftest import make_key

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CASES: Counter[str] = Counter()

# Any JSON value, with the strings and numbers that tend to break parsers and databases.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", " ", "0", "-1", "1e309", "USD", "usd", "US", "\x00", "💳", "a" * 300]),
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def body_of(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """Bodies that are nearly right (to reach the deep checks), anything-goes objects, or not
    objects at all."""
    fields = {**required, **optional}
    nearly_right = st.fixed_dictionaries(required, optional=optional)
    anything = st.fixed_dictionaries(
        {}, optional={name: strategy | JSON for name, strategy in fields.items()}
    ).flatmap(
        lambda known: st.dictionaries(st.text(max_size=10), JSON, max_size=2).map(
            lambda extra: {**extra, **known}
        )
    )
    return st.one_of(nearly_right, anything, JSON)


PRODUCT = body_of(
    {
        "name": st.text(min_size=1, max_size=130),
        "price": st.integers(min_value=-5, max_value=2**64),
        "currency": st.sampled_from(["USD", "EUR", "usd", "XX", "EURO"]),
    },
    {
        "description": st.text(max_size=50),
        "sku": st.text(max_size=70) | st.none(),
        "inventory": st.integers(min_value=-5, max_value=2**64),
        "published": st.booleans(),
        "markets": st.lists(st.sampled_from(["US", "EU", "", "us"]), max_size=3),
    },
)
ITEM = body_of(
    {"product_id": st.integers(min_value=-2, max_value=2**64)},
    {"quantity": st.integers(min_value=-2, max_value=2**40)},
)
CHECKOUT = body_of(
    {"cart_id": st.text(max_size=40), "email": st.emails() | st.text(max_size=30)}, {}
)


@pytest.fixture(scope="module", autouse=True)
def case_report() -> Iterator[None]:
    """Print how many cases each input got, by status (shown with -s or -rA)."""
    yield
    print(f"\nhypothesis: {CASES.total()} cases")
    for label, count in sorted(CASES.items()):
        print(f"  {count:4d}  {label}")


@pytest.fixture
def call(client: FlaskClient, user: User) -> Callable[..., TestResponse]:
    """POST JSON to an API path with a secret key holding every scope."""
    accounts.add_market(user.merchant_id, "US", "United States")
    token = make_key(user, "secret", label="Fuzz", scopes=list(SCOPES), rate_limit=10_000)[1]

    def post(path: str, body: Any) -> TestResponse:
        return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})

    return post


def assert_answer(response: TestResponse, label: str) -> None:
    """Never a server error; a 4xx is exactly the SPEC's error object; a success has an id."""
    CASES[f"{label} -> {response.status_code}"] += 1
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    if response.status_code >= 400:
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["code"], str) and body["error"]["code"]
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    else:
        assert "id" in body, body


def test_creating_products_from_any_json(call: Callable[..., TestResponse]) -> None:
    @FUZZ
    @given(body=PRODUCT)
    def run(body: Any) -> None:
        assert_answer(call("/api/v1/admin/products", body), "POST /admin/products")

    run()


def test_adding_any_json_to_a_cart(call: Callable[..., TestResponse]) -> None:
    product = call(
        "/api/v1/admin/products",
        {
            "name": "Mug",
            "price": 1800,
            "currency": "USD",
            "inventory": 5,
            "markets": ["US"],
            "published": True,
        },
    ).get_json()["id"]
    cart = call("/api/v1/carts", {}).get_json()["id"]

    @FUZZ
    @given(body=ITEM, existing=st.booleans())
    def run(body: Any, existing: bool) -> None:
        if existing and isinstance(body, dict):
            body["product_id"] = product
        assert_answer(call(f"/api/v1/carts/{cart}/items", body), "POST /carts/{id}/items")

    run()


def test_checking_out_any_json(call: Callable[..., TestResponse]) -> None:
    product = call(
        "/api/v1/admin/products",
        {
            "name": "Mug",
            "price": 1800,
            "currency": "USD",
            "inventory": 10_000,
            "markets": ["US"],
            "published": True,
        },
    ).get_json()["id"]

    @FUZZ
    @given(body=CHECKOUT, existing=st.booleans())
    def run(body: Any, existing: bool) -> None:
        if existing and isinstance(body, dict):
            cart = call("/api/v1/carts", {"items": [{"product_id": product}]}).get_json()
            body["cart_id"] = cart["id"]
        assert_answer(call("/api/v1/checkouts", body), "POST /checkouts")

    run()


@pytest.mark.parametrize("path", ["/api/v1/admin/products", "/api/v1/carts", "/api/v1/checkouts"])
def test_bytes_that_are_not_json(client: FlaskClient, user: User, path: str) -> None:
    token = make_key(user, "secret", scopes=list(SCOPES), rate_limit=10_000)[1]

    @FUZZ
    @given(raw=st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
    def run(raw: bytes) -> None:
        response = client.post(
            path,
            data=raw,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert_answer(response, f"POST {path} (raw bytes)")

    run()
