"""Admin products: every product with inventory; create, update and delete with validation."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.store.models import Product
from tests.factories import TIMESTAMP, Api, add_product, error_of, secret_token

NEW_PRODUCT = {
    "name": "Merino beanie",
    "description": "Fine merino wool.",
    "price": 3200,
    "currency": "eur",
    "sku": "BEANIE-03",
    "inventory": 25,
    "published": True,
    "markets": ["eu"],
}


@pytest.fixture
def api(client: FlaskClient, user: User) -> Api:
    """A secret key with every scope, for every market."""
    accounts.add_market(user.merchant_id, "EU", "European Union")
    accounts.add_market(user.merchant_id, "US", "United States")
    return Api(client, secret_token(user))


def products() -> int:
    """How many products exist."""
    return db.session.scalar(select(func.count()).select_from(Product))


def test_create_product(api: Api) -> None:
    response = api.post("/admin/products", json=NEW_PRODUCT)
    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "id": body["id"],
        "object": "product",
        "name": "Merino beanie",
        "description": "Fine merino wool.",
        "price": 3200,
        "currency": "EUR",
        "sku": "BEANIE-03",
        "in_stock": True,
        "markets": ["EU"],
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "inventory": 25,
        "published": True,
    }
    assert response.headers["Location"].endswith(f"/api/v1/admin/products/{body['id']}")
    assert api.get(f"/admin/products/{body['id']}").get_json() == body


def test_list_includes_unpublished_products_and_filters(api: Api, user: User) -> None:
    live = add_product(user)
    draft = add_product(user, name="Draft", published=False, inventory=0)
    body = api.get("/admin/products").get_json()
    assert [(p["id"], p["published"], p["inventory"]) for p in body["data"]] == [
        (live.id, True, 10),
        (draft.id, False, 0),
    ]
    assert body["has_more"] is False
    assert [p["id"] for p in api.get("/admin/products?published=false").get_json()["data"]] == [
        draft.id
    ]
    assert [p["id"] for p in api.get("/admin/products?published=true").get_json()["data"]] == [
        live.id
    ]
    status, code, message = error_of(api.get("/admin/products?published=maybe"))
    assert (status, code) == (400, "invalid_request") and message.startswith("published")


def test_list_pagination(api: Api, user: User) -> None:
    ids = [add_product(user, name=f"P{n}").id for n in range(3)]
    page = api.get(f"/admin/products?limit=1&starting_after={ids[0]}").get_json()
    assert ([p["id"] for p in page["data"]], page["has_more"]) == ([ids[1]], True)
    status, code, message = error_of(api.get("/admin/products?limit=500"))
    assert (status, code, message) == (
        400,
        "invalid_request",
        "limit must be an integer from 1 to 100.",
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": None}, "name", "name is required and must be a non-empty string."),
        ({"name": "x" * 201}, "name", "name must be at most 200 characters."),
        ({"price": -1}, "price", "price must be a non-negative integer (minor units)."),
        ({"price": 9.99}, "price", "price must be a non-negative integer (minor units)."),
        ({"currency": "euro"}, "currency", "currency must be a three-letter ISO 4217 code"),
        ({"inventory": -1}, "inventory", "inventory must be a non-negative integer."),
        ({"published": "true"}, "published", "published must be true or false."),
        ({"markets": ["MARS"]}, "markets", "markets contains an unknown market code: 'MARS'."),
        ({"markets": "EU"}, "markets", "markets must be a list of market codes"),
        ({"colour": "grey"}, "colour", "colour is not a product field"),
    ],
)
def test_create_validation_names_the_field(
    api: Api, change: dict[str, Any], field: str, message: str
) -> None:
    status, code, text = error_of(api.post("/admin/products", json={**NEW_PRODUCT, **change}))
    assert (status, code) == (400, "invalid_request")
    assert text.startswith(field)
    assert message in text
    assert products() == 0


@pytest.mark.parametrize("missing", ["name", "price", "currency"])
def test_required_fields(api: Api, missing: str) -> None:
    body = {key: value for key, value in NEW_PRODUCT.items() if key != missing}
    assert error_of(api.post("/admin/products", json=body)) == (
        400,
        "invalid_request",
        f"{missing} is required.",
    )


def test_sku_is_unique(api: Api) -> None:
    assert api.post("/admin/products", json=NEW_PRODUCT).status_code == 201
    status, code, message = error_of(api.post("/admin/products", json=NEW_PRODUCT))
    assert (status, code) == (400, "invalid_request")
    assert message == "sku 'BEANIE-03' is already used by another product."
    assert products() == 1


def test_update_is_partial(api: Api, user: User) -> None:
    mug = add_product(user, sku="MUG")
    response = api.patch(f"/admin/products/{mug.id}", json={"price": 1900, "published": False})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["price"], body["published"], body["sku"]) == (
        "Enamel mug",
        1900,
        False,
        "MUG",
    )
    status, code, message = error_of(
        api.patch(f"/admin/products/{mug.id}", json={"name": "New", "price": -5})
    )
    assert (status, code) == (400, "invalid_request") and message.startswith("price")
    # The failed request changed nothing, not even the valid field.
    assert api.get(f"/admin/products/{mug.id}").get_json()["name"] == "Enamel mug"


def test_delete(api: Api, user: User) -> None:
    mug = add_product(user)
    response = api.delete(f"/admin/products/{mug.id}")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert products() == 0
    for call in (api.get, api.delete):
        assert error_of(call(f"/admin/products/{mug.id}"))[:2] == (404, "not_found")
    assert error_of(api.patch(f"/admin/products/{mug.id}", json={"price": 1}))[:2] == (
        404,
        "not_found",
    )


def test_a_market_key_manages_its_market_only(client: FlaskClient, user: User) -> None:
    eu = accounts.add_market(user.merchant_id, "EU", "European Union")
    accounts.add_market(user.merchant_id, "US", "United States")
    us_only = add_product(user, markets=["US"])
    shared = add_product(user, name="Shared", markets=["US", "EU"])
    api = Api(client, secret_token(user, market_id=eu.id))
    assert [p["id"] for p in api.get("/admin/products").get_json()["data"]] == [shared.id]
    assert api.get(f"/admin/products/{shared.id}").get_json()["markets"] == ["EU"]
    assert error_of(api.get(f"/admin/products/{us_only.id}"))[:2] == (404, "not_found")
    created = api.post("/admin/products", json={"name": "Beret", "price": 1, "currency": "EUR"})
    assert created.get_json()["markets"] == ["EU"]
    status, _, message = error_of(
        api.post("/admin/products", json={**NEW_PRODUCT, "markets": ["US"]})
    )
    assert status == 400 and message == "markets contains an unknown market code: 'US'."


def test_a_market_key_cannot_change_products_other_markets_share(
    client: FlaskClient, user: User
) -> None:
    eu = accounts.add_market(user.merchant_id, "EU", "European Union")
    accounts.add_market(user.merchant_id, "US", "United States")
    accounts.add_market(user.merchant_id, "UK", "United Kingdom")
    shared = add_product(user, name="Shared", price=2000, markets=["US", "EU", "UK"])
    eu_only = add_product(user, name="Beret", markets=["EU"])
    eu_api = Api(client, secret_token(user, market_id=eu.id))
    everywhere = Api(client, secret_token(user))
    before = everywhere.get(f"/admin/products/{shared.id}").get_json()
    for response in (
        eu_api.patch(f"/admin/products/{shared.id}", json={"price": 1}),
        eu_api.patch(f"/admin/products/{shared.id}", json={"markets": ["EU"]}),
        eu_api.delete(f"/admin/products/{shared.id}"),
    ):
        status, code, message = error_of(response)
        assert (status, code) == (403, "insufficient_scope")
        assert message == (
            f"Product {shared.id} is also sold in UK, US; this key is limited to one market, "
            "so it cannot "
            + ("delete" if response.request.method == "DELETE" else "change")
            + " it. A key for all markets can."
        )
    # Nothing changed: what the US and UK keys see is what they saw before.
    assert everywhere.get(f"/admin/products/{shared.id}").get_json() == before
    # A product of the EU alone is the EU key's to change and delete.
    assert eu_api.patch(f"/admin/products/{eu_only.id}", json={"price": 5}).status_code == 200
    assert eu_api.delete(f"/admin/products/{eu_only.id}").status_code == 204
    # A key for all markets can change the shared one.
    assert everywhere.patch(f"/admin/products/{shared.id}", json={"price": 1}).status_code == 200
