"""The shopper and admin customer operations in the OpenAPI document: bodies, answers, the
`X-Customer-Token` header and the shopper error codes; and real answers agree with it."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from portal.accounts.models import User
from portal.api.schemas.errors import ERROR_CODES
from portal.customers import tokens
from tests.conftest import make_key
from tests.customers.conftest import SHOPPER_PASSWORD
from tests.factories import add_product

API = "/api/v1"
KEY_CODES = ["missing_api_key", "invalid_api_key", "api_key_revoked", "api_key_expired"]
SHOPPER_CODES = [
    "invalid_customer_token",
    "customer_token_expired",
    "refresh_token_reused",
    "invalid_credentials",
]

# (method, path): (scope, success status, body schema, answer schema, X-Customer-Token)
CUSTOMER_OPERATIONS: dict[tuple[str, str], tuple[str, str, str | None, str | None, str | None]]
CUSTOMER_OPERATIONS = {
    ("POST", "/customers"): ("customer:auth", "201", "RegisterBody", "ShopperSignIn", None),
    ("POST", "/customers/sessions"): (
        "customer:auth",
        "201",
        "SessionBody",
        "ShopperSignIn",
        None,
    ),
    ("POST", "/customers/codes"): ("customer:auth", "202", "EmailBody", "Accepted", None),
    ("POST", "/customers/sessions/refresh"): (
        "customer:auth",
        "201",
        "RefreshBody",
        "ShopperSignIn",
        None,
    ),
    ("DELETE", "/customers/sessions/current"): ("customer:auth", "204", None, None, "required"),
    ("POST", "/customers/password-resets"): ("customer:auth", "202", "EmailBody", "Accepted", None),
    ("POST", "/customers/password-resets/confirm"): (
        "customer:auth",
        "204",
        "ResetConfirmBody",
        None,
        None,
    ),
    ("GET", "/customers/me"): ("customer:auth", "200", None, "CustomerProfile", "required"),
    ("PATCH", "/customers/me"): (
        "customer:auth",
        "200",
        "ProfileUpdate",
        "CustomerProfile",
        "required",
    ),
    ("GET", "/customers/me/orders"): ("customer:auth", "200", None, "OrderList", "required"),
    ("GET", "/customers/me/orders/{order_id}"): (
        "customer:auth",
        "200",
        None,
        "Order",
        "required",
    ),
    ("GET", "/admin/customers/{customer_id}"): (
        "customers:read",
        "200",
        None,
        "AdminCustomer",
        None,
    ),
    ("PATCH", "/admin/customers/{customer_id}"): (
        "customers:write",
        "200",
        "AdminCustomerUpdate",
        "AdminCustomer",
        None,
    ),
    ("POST", "/admin/customers/{customer_id}/sign-out"): (
        "customers:write",
        "200",
        None,
        "CustomerSignOut",
        None,
    ),
    # Carts and checkouts made with a shopper's token belong to the shopper.
    ("POST", "/carts"): ("cart:write", "201", "CartCreate", "Cart", "optional"),
    ("POST", "/checkouts"): (
        "checkout:create",
        "201",
        "CheckoutCreate",
        "CheckoutSession",
        "optional",
    ),
}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    """The OpenAPI document, as a storefront developer downloads it."""
    response = client.get(API + "/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _header(operation: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (p for p in operation.get("parameters", []) if p["name"] == "X-Customer-Token"), None
    )


@pytest.mark.parametrize(("method", "path"), list(CUSTOMER_OPERATIONS), ids=str)
def test_each_customer_operation_documents_its_body_answer_and_token(
    document: dict[str, Any], method: str, path: str
) -> None:
    scope, status, body, answer, token = CUSTOMER_OPERATIONS[(method, path)]
    operation = document["paths"][path][method.lower()]
    assert operation["x-required-scope"] == scope
    responses = operation["responses"]
    assert [code for code in responses if code.startswith("2")] == [status]
    success = responses[status]
    if answer is None:
        assert "content" not in success  # 204: no body
    else:
        assert success["content"]["application/json"]["schema"] == _ref(answer)
    if body is None:
        assert "requestBody" not in operation
    else:
        assert operation["requestBody"]["content"]["application/json"]["schema"] == _ref(body)
        assert {"400", "413", "415"} <= set(responses)
    header = _header(operation)
    if token is None:
        assert header is None
    else:
        assert header is not None
        assert header["in"] == "header"
        assert header["required"] is (token == "required")
        assert header["schema"]["pattern"] == "^cat_[0-9A-Za-z]{46}$"


def test_shopper_401s_list_the_shopper_codes_and_other_operations_do_not(
    document: dict[str, Any],
) -> None:
    components = document["components"]["responses"]

    def codes(name: str) -> list[str]:
        schema = components[name]["content"]["application/json"]["schema"]
        return schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]

    assert codes("ShopperUnauthorized") == KEY_CODES + SHOPPER_CODES
    assert codes("Unauthorized") == KEY_CODES
    assert list(ERROR_CODES[401]) == KEY_CODES + SHOPPER_CODES
    assert codes("Conflict") == ["conflict"]
    shopper_401 = {"$ref": "#/components/responses/ShopperUnauthorized"}
    for (method, path), (_, _, _, _, token) in CUSTOMER_OPERATIONS.items():
        responses = document["paths"][path][method.lower()]["responses"]
        if token is not None or path in ("/customers/sessions", "/customers/sessions/refresh"):
            assert responses["401"] == shopper_401, (method, path)
    for path in ("/admin/products", "/catalog/products", "/key"):
        assert document["paths"][path]["get"]["responses"]["401"] == {
            "$ref": "#/components/responses/Unauthorized"
        }
    for path, method in (("/customers", "post"), ("/admin/customers/{customer_id}", "patch")):
        assert document["paths"][path][method]["responses"]["409"] == {
            "$ref": "#/components/responses/Conflict"
        }


def test_the_body_schemas_say_what_the_models_accept(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in (
        "RegisterBody",
        "SessionBody",
        "EmailBody",
        "RefreshBody",
        "ResetConfirmBody",
        "ProfileUpdate",
        "AdminCustomerUpdate",
    ):
        assert schemas[name]["additionalProperties"] is False, name
    register = schemas["RegisterBody"]
    assert register["required"] == ["email", "password"]
    assert register["properties"]["password"]["minLength"] == 10
    assert register["properties"]["email"]["format"] == "email"
    assert schemas["SessionBody"]["oneOf"] == [
        {"required": ["password"]},
        {"required": ["code"]},
    ]
    assert schemas["SessionBody"]["properties"]["code"]["pattern"] == "^[0-9]{6}$"
    assert schemas["AdminCustomerUpdate"]["minProperties"] == 1
    # A field left out of a PATCH is no null a client should send.
    assert "default" not in schemas["AdminCustomerUpdate"]["properties"]["email"]
    assert schemas["ShopperSignIn"]["required"] == [
        "object",
        "customer",
        "access_token",
        "refresh_token",
        "token_type",
        "access_expires_in",
        "refresh_expires_in",
    ]
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert "X-Customer-Token" in tags["Shoppers"]


# -- real answers against the document ------------------------------------------------------


class Checker:
    """Validates API answers against the schema the document gives their operation."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def __call__(
        self, method: str, path: str, response: TestResponse, status: int | None = None
    ) -> dict[str, Any] | None:
        """The answer's JSON, after checking it has a documented status and shape."""
        if status is not None:
            assert response.status_code == status, response.get_json()
        responses = self.document["paths"][path][method.lower()]["responses"]
        documented = responses.get(str(response.status_code))
        assert documented is not None, (method, path, response.status_code)
        if "$ref" in documented:
            documented = self.document["components"]["responses"][documented["$ref"].split("/")[-1]]
        if "content" not in documented:
            assert response.get_data() == b""
            return None
        schema = documented["content"]["application/json"]["schema"]
        body = response.get_json()
        validator = Draft202012Validator({**schema, "components": self.document["components"]})
        errors = [error.message for error in validator.iter_errors(body)]
        assert not errors, (method, path, body, errors)
        return body


def test_every_shopper_answer_and_error_matches_the_document(
    client: FlaskClient, user: User, document: dict[str, Any]
) -> None:
    check = Checker(document)
    key = make_key(user, "publishable")[1]
    back_office = make_key(user, "secret", scopes=["customers:read", "customers:write"])[1]
    product = add_product(user)

    def call(method: str, path: str, json: Any = None, **headers: str) -> TestResponse:
        return client.open(
            API + path,
            method=method,
            json=json,
            headers={"Authorization": f"Bearer {headers.pop('key', key)}", **headers},
        )

    registration = {"email": "ada@example.com", "password": SHOPPER_PASSWORD, "name": "Ada"}
    signed = check("POST", "/customers", call("POST", "/customers", registration), 201)
    assert signed is not None
    access, refresh = signed["access_token"], signed["refresh_token"]
    me = {"X-Customer-Token": access}
    check("POST", "/customers", call("POST", "/customers", registration), 409)
    check("POST", "/customers", call("POST", "/customers", {"email": "x"}), 400)
    check("GET", "/customers/me", call("GET", "/customers/me", **me), 200)
    check("PATCH", "/customers/me", call("PATCH", "/customers/me", {"name": "Ada L"}, **me), 200)
    check("GET", "/customers/me", call("GET", "/customers/me"), 401)
    malformed = {"X-Customer-Token": "cat_" + "A" * 46}
    check("GET", "/customers/me", call("GET", "/customers/me", **malformed), 401)

    cart = check(
        "POST",
        "/carts",
        call("POST", "/carts", {"items": [{"product_id": product.id}]}, **me),
        201,
    )
    assert cart is not None
    check("POST", "/carts", call("POST", "/carts", {}, **malformed), 401)
    checkout = call("POST", "/checkouts", {"cart_id": cart["id"], "email": "ada@example.com"}, **me)
    order = check("POST", "/checkouts", checkout, 201)
    assert order is not None
    orders = check("GET", "/customers/me/orders", call("GET", "/customers/me/orders", **me), 200)
    assert orders is not None
    assert [o["id"] for o in orders["data"]] == [order["order"]["id"]]
    one = call("GET", f"/customers/me/orders/{order['order']['id']}", **me)
    check("GET", "/customers/me/orders/{order_id}", one, 200)
    missing = call("GET", "/customers/me/orders/999999", **me)
    check("GET", "/customers/me/orders/{order_id}", missing, 404)

    wrong = call("POST", "/customers/sessions", {"email": "ada@example.com", "password": "x" * 10})
    assert check("POST", "/customers/sessions", wrong, 401) == {
        "error": {"code": "invalid_credentials", "message": "The email or password is not right."}
    }
    sign_in = {"email": "ada@example.com", "password": SHOPPER_PASSWORD}
    check("POST", "/customers/sessions", call("POST", "/customers/sessions", sign_in), 201)
    check("POST", "/customers/codes", call("POST", "/customers/codes", {"email": "a@b.co"}), 202)
    resets = call("POST", "/customers/password-resets", {"email": "a@b.co"})
    check("POST", "/customers/password-resets", resets, 202)
    confirm = call(
        "POST",
        "/customers/password-resets/confirm",
        {"token": tokens.generate(tokens.RESET), "password": "a brand new password"},
    )
    check("POST", "/customers/password-resets/confirm", confirm, 400)

    refreshed = call("POST", "/customers/sessions/refresh", {"refresh_token": refresh})
    pair = check("POST", "/customers/sessions/refresh", refreshed, 201)
    assert pair is not None
    reused = call("POST", "/customers/sessions/refresh", {"refresh_token": refresh})
    body = check("POST", "/customers/sessions/refresh", reused, 401)
    assert body is not None
    assert body["error"]["code"] == "refresh_token_reused"

    customer_id = signed["customer"]["id"]
    admin = f"/admin/customers/{customer_id}"
    detail = check(
        "GET", "/admin/customers/{customer_id}", call("GET", admin, key=back_office), 200
    )
    assert detail is not None
    assert detail["order_count"] == 1
    patched = call("PATCH", admin, {"name": "Ada King"}, key=back_office)
    check("PATCH", "/admin/customers/{customer_id}", patched, 200)
    check("PATCH", "/admin/customers/{customer_id}", call("PATCH", admin, {}, key=back_office), 400)
    ended = call("POST", admin + "/sign-out", key=back_office)
    check("POST", "/admin/customers/{customer_id}/sign-out", ended, 200)

    again = check("POST", "/customers/sessions", call("POST", "/customers/sessions", sign_in), 201)
    assert again is not None
    out = call(
        "DELETE", "/customers/sessions/current", **{"X-Customer-Token": again["access_token"]}
    )
    check("DELETE", "/customers/sessions/current", out, 204)
