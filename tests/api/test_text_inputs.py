"""Text that no database column can hold is refused at the door, with the field named."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.extensions import db
from portal.store.models import Product
from tests.api.conftest import bearer
from tests.conftest import make_key

VALID = {"name": "Mug", "price": 1200, "currency": "USD"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Mug\x00"}, "name"),
        ({"description": "\x00"}, "description"),
        ({"sku": "MUG\x00"}, "sku"),
        ({"markets": ["US", "E\x00U"]}, "markets[1]"),
    ],
)
def test_nul_characters_are_refused_and_nothing_is_written(
    client: FlaskClient, user: User, change: dict, field: str
) -> None:
    _, token = make_key(user, "secret", scopes=["products:write"])
    response = client.post(
        "/api/v1/admin/products", json={**VALID, **change}, headers=bearer(token)
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"] == f"{field} must not contain the character U+0000."
    assert db.session.scalar(select(func.count()).select_from(Product)) == 0


def test_a_cart_id_with_a_nul_character_is_simply_not_found(
    client: FlaskClient, user: User
) -> None:
    _, token = make_key(user, "publishable")
    response = client.get("/api/v1/carts/cart_%00x", headers=bearer(token))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_cursor_past_the_largest_id_gives_an_empty_page(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "secret", scopes=["orders:read"])
    response = client.get("/api/v1/admin/orders?starting_after=517959531841", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"data": [], "has_more": False}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_an_id_past_the_largest_is_not_found_for_every_method(
    client: FlaskClient, user: User, method: str
) -> None:
    _, token = make_key(user, "secret", scopes=["products:read", "products:write"])
    response = client.open(
        "/api/v1/admin/products/2147483648", method=method, json={}, headers=bearer(token)
    )
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_real_wrong_method_is_still_405(client: FlaskClient, user: User) -> None:
    _, token = make_key(user, "secret", scopes=["products:write"])
    response = client.put("/api/v1/admin/products/1", json={}, headers=bearer(token))
    assert response.status_code == 405
