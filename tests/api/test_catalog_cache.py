"""Catalog responses carry an ETag and a private max-age; a matching If-None-Match gets 304."""

from __future__ import annotations

from flask.testing import FlaskClient

from portal.accounts.models import User
from tests.factories import add_product, bearer, make_key

LIST = "/api/v1/catalog/products"


def test_the_catalog_answers_304_until_a_product_changes(client: FlaskClient, user: User) -> None:
    product = add_product(user, name="Canvas tote bag, natural, heavy cotton " + "x" * 40)
    add_product(user, name="Enamel mug")
    _, token = make_key(user, "publishable")

    first = client.get(LIST, headers=bearer(token))
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, max-age=30"
    assert "Authorization" in first.headers["Vary"]
    etag = first.headers["ETag"]

    again = client.get(LIST, headers={**bearer(token), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag

    one = client.get(f"{LIST}/{product.id}", headers=bearer(token))
    assert one.status_code == 200 and one.headers["ETag"] != etag
    assert (
        client.get(
            f"{LIST}/{product.id}", headers={**bearer(token), "If-None-Match": one.headers["ETag"]}
        ).status_code
        == 304
    )

    secret = make_key(user, "secret", scopes=["products:write"])[1]
    patched = client.patch(
        f"/api/v1/admin/products/{product.id}", json={"price": 2500}, headers=bearer(secret)
    )
    assert patched.status_code == 200
    changed = client.get(LIST, headers={**bearer(token), "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    prices = {item["id"]: item["price"] for item in changed.get_json()["data"]}
    assert prices[product.id] == 2500


def test_a_stale_or_foreign_etag_gets_the_full_catalog(client: FlaskClient, user: User) -> None:
    add_product(user)
    _, token = make_key(user, "publishable")
    response = client.get(LIST, headers={**bearer(token), "If-None-Match": '"not-this-one"'})
    assert response.status_code == 200
    assert len(response.get_json()["data"]) == 1
