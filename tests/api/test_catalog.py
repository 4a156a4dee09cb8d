"""Storefront catalog: published products of the key's market, paginated by id."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.accounts import service as accounts
from portal.accounts.models import User
from tests.factories import TIMESTAMP, Api, add_product, error_of, publishable_token


@pytest.fixture
def markets(user: User) -> dict[str, Any]:
    """US and EU markets of the user's merchant."""
    return {
        "US": accounts.add_market(user.merchant_id, "US", "United States"),
        "EU": accounts.add_market(user.merchant_id, "EU", "European Union"),
    }


@pytest.fixture
def api(client: FlaskClient, user: User) -> Api:
    """A publishable key for every market."""
    return Api(client, publishable_token(user))


def test_list_shows_published_products_exactly(
    api: Api, user: User, markets: dict[str, Any]
) -> None:
    mug = add_product(user, sku="MUG-1", markets=["US", "EU"])
    add_product(user, name="Draft", published=False)
    response = api.get("/catalog/products")
    assert response.status_code == 200
    assert response.get_json() == {
        "data": [
            {
                "id": mug.id,
                "object": "product",
                "name": "Enamel mug",
                "description": "350 ml.",
                "price": 1800,
                "currency": "USD",
                "sku": "MUG-1",
                "in_stock": True,
                "markets": ["EU", "US"],
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
            }
        ],
        "has_more": False,
    }
    assert "inventory" not in response.get_json()["data"][0]


def test_out_of_stock_products_are_listed_as_such(api: Api, user: User) -> None:
    add_product(user, inventory=0)
    assert api.get("/catalog/products").get_json()["data"][0]["in_stock"] is False


def test_pagination(api: Api, user: User) -> None:
    ids = [add_product(user, name=f"P{n}").id for n in range(5)]
    first = api.get("/catalog/products?limit=2").get_json()
    assert [p["id"] for p in first["data"]] == ids[:2]
    assert first["has_more"] is True
    second = api.get(f"/catalog/products?limit=2&starting_after={ids[1]}").get_json()
    assert [p["id"] for p in second["data"]] == ids[2:4]
    assert second["has_more"] is True
    last = api.get(f"/catalog/products?limit=2&starting_after={ids[3]}").get_json()
    assert [p["id"] for p in last["data"]] == ids[4:]
    assert last["has_more"] is False
    assert len(api.get("/catalog/products").get_json()["data"]) == 5


def test_default_limit_is_20(api: Api, user: User) -> None:
    for n in range(21):
        add_product(user, name=f"P{n}")
    body = api.get("/catalog/products").get_json()
    assert (len(body["data"]), body["has_more"]) == (20, True)
    body = api.get("/catalog/products?limit=100").get_json()
    assert (len(body["data"]), body["has_more"]) == (21, False)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=", "limit"),
        ("starting_after=abc", "starting_after"),
        ("starting_after=-4", "starting_after"),
        ("starting_after=%C2%B2", "starting_after"),
        ("limit=%C2%B2", "limit"),
    ],
)
def test_bad_pagination_parameters(api: Api, query: str, parameter: str) -> None:
    status, code, message = error_of(api.get(f"/catalog/products?{query}"))
    assert (status, code) == (400, "invalid_request")
    assert message.startswith(parameter)


def test_market_key_sees_only_its_market(
    client: FlaskClient, user: User, markets: dict[str, Any]
) -> None:
    us_only = add_product(user, name="US", markets=["US"])
    both = add_product(user, name="Both", markets=["US", "EU"])
    eu_api = Api(client, publishable_token(user, market_id=markets["EU"].id))
    body = eu_api.get("/catalog/products").get_json()
    assert [p["id"] for p in body["data"]] == [both.id]
    # The key does not even learn the names of the other markets.
    assert body["data"][0]["markets"] == ["EU"]
    status, code, _ = error_of(eu_api.get(f"/catalog/products/{us_only.id}"))
    assert (status, code) == (404, "not_found")


def test_get_product(api: Api, user: User) -> None:
    mug = add_product(user)
    response = api.get(f"/catalog/products/{mug.id}")
    assert response.status_code == 200
    assert response.get_json()["id"] == mug.id
    assert response.get_json()["name"] == "Enamel mug"


def test_unpublished_and_unknown_products_are_not_found(api: Api, user: User) -> None:
    draft = add_product(user, published=False)
    for product_id in (draft.id, 987654, 2**31 - 1):
        status, code, message = error_of(api.get(f"/catalog/products/{product_id}"))
        assert (status, code) == (404, "not_found")
        assert str(product_id) in message


def test_markets(client: FlaskClient, user: User, markets: dict[str, Any]) -> None:
    api = Api(client, publishable_token(user))
    assert api.get("/catalog/markets").get_json() == {
        "data": [
            {"id": markets["US"].id, "object": "market", "code": "US", "name": "United States"},
            {"id": markets["EU"].id, "object": "market", "code": "EU", "name": "European Union"},
        ],
        "has_more": False,
    }
    eu_api = Api(client, publishable_token(user, market_id=markets["EU"].id))
    assert [m["code"] for m in eu_api.get("/catalog/markets").get_json()["data"]] == ["EU"]
    paged = api.get("/catalog/markets?limit=1").get_json()
    assert ([m["code"] for m in paged["data"]], paged["has_more"]) == (["US"], True)


def test_ids_beyond_the_id_range_are_not_found(api: Api) -> None:
    status, code, _ = error_of(api.get("/catalog/products/99999999999999999999999"))
    assert (status, code) == (404, "not_found")
