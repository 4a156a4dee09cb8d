"""`GET /api/v1/openapi.json`: a valid OpenAPI 3.1 document of every /api/v1 route."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from portal.api import auth, openapi
from portal.api.openapi import api_rules, openapi_path
from portal.api.schemas.errors import ERROR_CODES
from portal.api.schemas.products import ProductCreate


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
        ("POST", "/checkouts/{checkout_id}/complete"),
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
        if path in ("/openapi.json", "/leaked-keys"):  # public: no key, so no 401/403
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


def test_error_responses_list_their_codes_as_enums(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    unauthorized = responses["Unauthorized"]["content"]["application/json"]
    code = unauthorized["schema"]["allOf"][1]["properties"]["error"]["properties"]["code"]
    assert code["enum"] == [
        "missing_api_key",
        "invalid_api_key",
        "api_key_revoked",
        "api_key_expired",
    ]
    assert unauthorized["example"]["error"]["code"] == "missing_api_key"
    for name, status in (("Forbidden", 403), ("Conflict", 409), ("TooManyRequests", 429)):
        schema = responses[name]["content"]["application/json"]["schema"]
        enum = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
        assert enum == list(ERROR_CODES[status])
    assert "Retry-After" in responses["TooManyRequests"]["headers"]
    fulfil = document["paths"]["/admin/orders/{order_id}/fulfill"]["post"]["responses"]
    assert fulfil["409"] == {"$ref": "#/components/responses/Conflict"}


def test_successes_carry_the_rate_limit_headers(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        success = next(r for status, r in operation["responses"].items() if status[0] == "2")
        if path in ("/openapi.json", "/leaked-keys"):  # public: no key's limit applies
            assert "headers" not in success
        else:
            assert set(success["headers"]) == {
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            }, (method, path)


def test_schemas_are_the_models_own(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    product_create = ProductCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["ProductCreate"] == product_create
    assert schemas["ProductCreate"]["additionalProperties"] is False
    assert schemas["ProductCreate"]["required"] == ["name", "price", "currency"]
    price = schemas["ProductCreate"]["properties"]["price"]
    assert (price["type"], price["minimum"], price["examples"]) == ("integer", 0, [1800])
    # A PATCH field left out is not a null: no `"default": null` on a non-nullable field.
    assert "default" not in schemas["ProductUpdate"]["properties"]["name"]
    assert schemas["Order"]["properties"]["status"]["enum"] == [
        "pending",
        "placed",
        "fulfilled",
        "cancelled",
        "expired",
    ]
    assert schemas["CheckoutSession"]["required"] == [
        "id",
        "object",
        "cart_id",
        "email",
        "order",
        "created_at",
        "expires_at",
        "completed_at",
    ]


def test_servers_is_an_absolute_url(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "http://portal.test/api/v1"}]


@pytest.mark.parametrize("app_config", [{"PORTAL_URL": "https://api.shop.example/"}])
def test_servers_follows_the_configured_public_url(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "https://api.shop.example/api/v1"}]


def test_the_document_is_built_at_start_up_not_per_request(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.get("/api/v1/openapi.json").get_data()

    def rebuild(_app: Flask) -> None:
        raise AssertionError("the document was built during a request")

    monkeypatch.setattr(openapi, "build_document", rebuild)
    monkeypatch.setattr(openapi, "component_schemas", rebuild)
    assert client.get("/api/v1/openapi.json").get_data() == first
