"""`GET /api/v1/openapi.json`: a valid OpenAPI 3.1 document of every /api/v1 route."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from portal.api import auth
from portal.api.openapi import api_rules, openapi_path


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    """The document, fetched without a key."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation in the document."""
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    registered = {
        (method, openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in (rule.methods or set()) - {"OPTIONS", "HEAD"}
    }
    documented = {(method, path) for method, path, _ in operations(document)}
    assert registered, "no API routes found"
    assert registered == documented
    assert len(api_rules(app)) == len(registered)
    # The SPEC's routes, written out, so a rename cannot slip through.
    for route in (
        ("GET", "/key"),
        ("GET", "/catalog/products"),
        ("GET", "/catalog/products/{product_id}"),
        ("POST", "/carts"),
        ("POST", "/carts/{cart_id}/items"),
        ("GET", "/carts/{cart_id}"),
        ("POST", "/checkouts"),
        ("GET", "/admin/products"),
        ("POST", "/admin/products"),
        ("GET", "/admin/products/{product_id}"),
        ("PATCH", "/admin/products/{product_id}"),
        ("DELETE", "/admin/products/{product_id}"),
        ("GET", "/admin/orders"),
        ("GET", "/admin/orders/{order_id}"),
        ("POST", "/admin/orders/{order_id}/fulfill"),
        ("POST", "/admin/orders/{order_id}/cancel"),
        ("GET", "/admin/customers"),
        ("GET", "/admin/usage"),
        ("GET", "/openapi.json"),
    ):
        assert route in documented, route


def test_each_operation_states_its_scope_and_errors(app: Flask, document: dict[str, Any]) -> None:
    by_route = {(method, openapi_path(rule.rule)): rule.endpoint for rule, method in api_rules(app)}
    for method, path, operation in operations(document):
        endpoint = by_route[(method, path)]
        scope = auth.ROUTE_SCOPES.get(endpoint)
        assert operation.get("x-required-scope") == scope, (method, path)
        if scope:
            assert f"Required scope: `{scope}`" in operation["description"]
        responses = operation["responses"]
        if path == "/openapi.json":
            assert operation["security"] == []
            continue
        for status in ("401", "403", "404", "429"):
            assert status in responses, (method, path, status)
        assert any(status.startswith("2") for status in responses)


def test_lists_document_pagination_and_bodies_their_schema(document: dict[str, Any]) -> None:
    products = document["paths"]["/catalog/products"]["get"]
    assert {p["name"] for p in products["parameters"]} >= {"limit", "starting_after"}
    create = document["paths"]["/admin/products"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProductCreate"
    }
    assert set(create["responses"]) >= {"201", "400", "415"}
    assert "204" in document["paths"]["/admin/products/{product_id}"]["delete"]["responses"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pk_live_… / sk_live_…",
        "description": "A publishable or secret key.",
    }
    assert (schemes["legacyApiKey"]["in"], schemes["legacyApiKey"]["name"]) == (
        "header",
        "X-API-Key",
    )
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert schemas["ErrorDetail"]["required"] == ["code", "message"]


def test_no_key_is_needed(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
