"""The demo store `make run` seeds: its keys are printed once and run the README's examples."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

KEY = re.compile(r"export (PUBLISHABLE_KEY|SECRET_KEY)=((?:pk|sk)_live_\w+)")


def printed_keys(app: Flask) -> dict[str, str]:
    """Run `seed-demo` and read the keys it prints."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    return dict(KEY.findall(result.output))


def test_seed_demo_prints_the_demo_keys_once(app: Flask) -> None:
    first = printed_keys(app)
    again = printed_keys(app)

    assert set(first) == {"PUBLISHABLE_KEY", "SECRET_KEY"}
    assert first["PUBLISHABLE_KEY"].startswith("pk_live_")
    assert first["SECRET_KEY"].startswith("sk_live_")
    assert again == {}  # only hashes are stored: nothing to print the second time


def test_the_readme_examples_work_with_the_printed_keys(app: Flask, client: FlaskClient) -> None:
    keys = printed_keys(app)
    storefront = {
        "Authorization": f"Bearer {keys['PUBLISHABLE_KEY']}",
        "Origin": "https://shop.example.com",
    }
    admin = {"Authorization": f"Bearer {keys['SECRET_KEY']}"}

    products = client.get("/api/v1/catalog/products", headers=storefront)
    assert products.status_code == 200
    assert products.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    first_product = products.get_json()["data"][0]
    assert first_product["name"] == "Canvas tote bag"  # id 1 in a fresh `make run` database

    cart = client.post("/api/v1/carts", headers=storefront, json={})
    assert cart.status_code == 201
    cart_id = cart.get_json()["id"]
    item = client.post(
        f"/api/v1/carts/{cart_id}/items",
        headers=storefront,
        json={"product_id": first_product["id"], "quantity": 2},
    )
    assert item.status_code == 200 and item.get_json()["total"] == 4800
    checkout = client.post(
        "/api/v1/checkouts",
        headers=storefront,
        json={"cart_id": cart_id, "email": "shopper@example.com"},
    )
    assert checkout.status_code == 201
    assert checkout.get_json()["order"]["status"] == "pending"

    created = client.post(
        "/api/v1/admin/products",
        headers=admin,
        json={
            "name": "Mug",
            "price": 1200,
            "currency": "usd",
            "inventory": 5,
            "published": True,
            "markets": ["US"],
        },
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["currency"] == "USD"
    for path in ("/api/v1/admin/orders", "/api/v1/admin/customers"):
        assert client.get(path, headers=admin).status_code == 200
    refused = client.get("/api/v1/admin/customers", headers=storefront)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "insufficient_scope"
