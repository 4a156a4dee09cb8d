"""The OpenAPI 3.1 document of `/api/v1`, built once at start-up from the app's own routes (so
none is missed) and the pydantic models' JSON Schema (so no shape is written twice)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Flask, Response, current_app
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from portal.api import auth, bp
from portal.api.customers import CUSTOMER_TOKEN_HEADER
from portal.api.leaked import LeakReceipt, LeakReport
from portal.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from portal.api.schemas.carts import Cart, CartCreate, CartItemCreate
from portal.api.schemas.customers import (
    Accepted,
    AdminCustomer,
    CustomerList,
    CustomerProfile,
    CustomerSignOut,
    ShopperSignIn,
)
from portal.api.schemas.errors import ERROR_CODES, SHOPPER_ERROR_CODES, Error
from portal.api.schemas.key import Key
from portal.api.schemas.orders import CheckoutCreate, CheckoutSession, Order, OrderList
from portal.api.schemas.products import (
    AdminProduct,
    AdminProductList,
    MarketList,
    Product,
    ProductCreate,
    ProductList,
    ProductUpdate,
)
from portal.api.schemas.settings import Settings, SettingsUpdate
from portal.api.schemas.usage import Usage
from portal.api.schemas.webhooks import (
    EndpointCreate,
    EndpointUpdate,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)
from portal.customers import tokens
from portal.customers.schemas import (
    AdminCustomerUpdate,
    EmailBody,
    ProfileUpdate,
    RefreshBody,
    RegisterBody,
    ResetConfirmBody,
    SessionBody,
)
from portal.keys.scopes import SCOPES
from portal.routing import RULE_ARGUMENT, rule_template
from portal.store.common import ID_MAX, ORDER_STATUSES

API_PREFIX = "/api/v1"
OPENAPI_VERSION = "3.1.0"
DOCUMENT_KEY = "openapi_document"
_REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    """What a route takes and returns, beyond what its rule and view say."""

    tag: str
    response: type[BaseModel] | None = None
    status: str = "200"
    body: type[BaseModel] | None = None
    body_optional: bool = False
    paginated: bool = False
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()
    errors: tuple[int, ...] = field(default=())  # statuses beyond the ones every route has
    # The shopper's X-Customer-Token: "required" (signed-in calls) or "optional" (a cart or
    # checkout that then belongs to the shopper). Either way the 401 lists the shopper codes.
    signed_in: Literal["required", "optional"] | None = None
    shopper_errors: bool = False  # the 401 lists the shopper codes (sign-in, refresh)
    answer: str = ""  # what the success means, if more than "Created" or "Accepted"


_ORDER_STATUS = {"type": "string", "enum": list(ORDER_STATUSES)}
_DATE_OR_TIME = {"type": "string", "examples": ["2026-11-01", "2026-11-01T12:00:00Z"]}

# Keyed by (method, path relative to /api/v1). A route missing here still appears in the
# document, described from its view's docstring.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/key"): Operation("Key", Key),
    ("GET", "/openapi.json"): Operation("Meta"),
    ("GET", "/catalog/products"): Operation("Storefront", ProductList, paginated=True),
    ("GET", "/catalog/products/{product_id}"): Operation("Storefront", Product),
    ("GET", "/catalog/markets"): Operation("Storefront", MarketList, paginated=True),
    ("POST", "/carts"): Operation(
        "Storefront",
        Cart,
        status="201",
        body=CartCreate,
        body_optional=True,
        signed_in="optional",
    ),
    ("POST", "/carts/{cart_id}/items"): Operation("Storefront", Cart, body=CartItemCreate),
    ("GET", "/carts/{cart_id}"): Operation("Storefront", Cart),
    ("POST", "/checkouts"): Operation(
        "Storefront", CheckoutSession, status="201", body=CheckoutCreate, signed_in="optional"
    ),
    ("POST", "/checkouts/{checkout_id}/complete"): Operation(
        "Storefront", CheckoutSession, errors=(409,)
    ),
    ("GET", "/admin/products"): Operation(
        "Admin",
        AdminProductList,
        paginated=True,
        query=(("published", {"type": "boolean"}, "Only published (true) or drafts (false)."),),
    ),
    ("POST", "/admin/products"): Operation("Admin", AdminProduct, status="201", body=ProductCreate),
    ("GET", "/admin/products/{product_id}"): Operation("Admin", AdminProduct),
    ("PATCH", "/admin/products/{product_id}"): Operation("Admin", AdminProduct, body=ProductUpdate),
    ("DELETE", "/admin/products/{product_id}"): Operation("Admin", status="204"),
    ("GET", "/admin/orders"): Operation(
        "Admin",
        OrderList,
        paginated=True,
        query=(("status", _ORDER_STATUS, "Only orders in this status."),),
    ),
    ("GET", "/admin/orders/{order_id}"): Operation("Admin", Order),
    ("POST", "/admin/orders/{order_id}/fulfill"): Operation("Admin", Order, errors=(409,)),
    ("POST", "/admin/orders/{order_id}/cancel"): Operation("Admin", Order, errors=(409,)),
    ("GET", "/admin/customers"): Operation("Admin", CustomerList, paginated=True),
    ("GET", "/admin/customers/{customer_id}"): Operation("Admin", AdminCustomer),
    ("PATCH", "/admin/customers/{customer_id}"): Operation(
        "Admin", AdminCustomer, body=AdminCustomerUpdate, errors=(409,)
    ),
    ("POST", "/admin/customers/{customer_id}/sign-out"): Operation("Admin", CustomerSignOut),
    ("POST", "/customers"): Operation(
        "Shoppers",
        ShopperSignIn,
        status="201",
        body=RegisterBody,
        errors=(409,),
        answer="Registered and signed in.",
    ),
    ("POST", "/customers/sessions"): Operation(
        "Shoppers",
        ShopperSignIn,
        status="201",
        body=SessionBody,
        shopper_errors=True,
        answer="Signed in.",
    ),
    ("POST", "/customers/codes"): Operation(
        "Shoppers", Accepted, status="202", body=EmailBody, answer="Accepted, whatever the email."
    ),
    ("POST", "/customers/sessions/refresh"): Operation(
        "Shoppers",
        ShopperSignIn,
        status="201",
        body=RefreshBody,
        shopper_errors=True,
        answer="A new pair; the refresh token sent is spent.",
    ),
    ("DELETE", "/customers/sessions/current"): Operation(
        "Shoppers", status="204", signed_in="required", answer="Signed out; no body."
    ),
    ("POST", "/customers/password-resets"): Operation(
        "Shoppers", Accepted, status="202", body=EmailBody, answer="Accepted, whatever the email."
    ),
    ("POST", "/customers/password-resets/confirm"): Operation(
        "Shoppers",
        status="204",
        body=ResetConfirmBody,
        answer="Password set and every sign-in ended; no body.",
    ),
    ("GET", "/customers/me"): Operation("Shoppers", CustomerProfile, signed_in="required"),
    ("PATCH", "/customers/me"): Operation(
        "Shoppers", CustomerProfile, body=ProfileUpdate, signed_in="required"
    ),
    ("GET", "/customers/me/orders"): Operation(
        "Shoppers", OrderList, paginated=True, signed_in="required"
    ),
    ("GET", "/customers/me/orders/{order_id}"): Operation("Shoppers", Order, signed_in="required"),
    ("GET", "/admin/settings"): Operation("Admin", Settings),
    ("PATCH", "/admin/settings"): Operation("Admin", Settings, body=SettingsUpdate),
    ("GET", "/admin/webhooks"): Operation("Webhooks", WebhookEndpointList),
    ("POST", "/admin/webhooks"): Operation(
        "Webhooks", WebhookEndpointWithSecret, status="201", body=EndpointCreate
    ),
    ("GET", "/admin/webhooks/{endpoint_id}"): Operation("Webhooks", WebhookEndpoint),
    ("PATCH", "/admin/webhooks/{endpoint_id}"): Operation(
        "Webhooks", WebhookEndpoint, body=EndpointUpdate
    ),
    ("DELETE", "/admin/webhooks/{endpoint_id}"): Operation("Webhooks", status="204"),
    ("POST", "/admin/webhooks/{endpoint_id}/rotate-secret"): Operation(
        "Webhooks", WebhookEndpointWithSecret
    ),
    ("GET", "/admin/webhooks/{endpoint_id}/deliveries"): Operation("Webhooks", WebhookDeliveryList),
    ("POST", "/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry"): Operation(
        "Webhooks", WebhookDelivery, status="202"
    ),
    ("POST", "/admin/webhooks/{endpoint_id}/test"): Operation(
        "Webhooks", WebhookDelivery, status="202"
    ),
    ("POST", "/leaked-keys"): Operation(
        "Security", LeakReceipt, status="202", body=LeakReport, errors=(429,)
    ),
    ("GET", "/admin/usage"): Operation(
        "Admin",
        Usage,
        query=(
            ("start", _DATE_OR_TIME, "ISO 8601 date or time (UTC); default 30 days before end."),
            ("end", _DATE_OR_TIME, "ISO 8601 date or time (UTC), exclusive; default now."),
        ),
    ),
}

_RESPONSE_TEXT: dict[int, tuple[str, str]] = {
    400: (
        "BadRequest",
        "Malformed JSON, or a bad parameter or field (the message names it and what it "
        "accepts), or a store rule the request breaks (out of stock, checked-out cart).",
    ),
    401: (
        "Unauthorized",
        "No key, or a malformed, mistyped, unknown, revoked or expired one (an inactive plan "
        "looks like an unknown key).",
    ),
    403: (
        "Forbidden",
        "The key lacks the scope (the message names it; a market-scoped key changing what "
        "other markets share names them), its origin or network is not allowed, or a secret "
        "key came from a browser.",
    ),
    404: (
        "NotFound",
        "No such object for this merchant (or for the key's market), or no market named by "
        "`X-Site-ID` for this key.",
    ),
    409: ("Conflict", "The request clashes with the object's current state."),
    413: ("RequestTooLarge", "The body is over the size limit."),
    415: ("UnsupportedMediaType", "The body is not `application/json`."),
    429: ("TooManyRequests", "Over the key's limit, or too many failed authentications."),
    500: ("ServerError", "Unexpected error; the message and `request_id` identify it."),
}

# The 401 of the shopper operations: the key's codes and the shopper's.
_SHOPPER_UNAUTHORIZED = (
    "ShopperUnauthorized",
    "As for any operation, a bad key; or the shopper's `X-Customer-Token` is missing, "
    "malformed, unknown, revoked (signed out, password reset) or of another store "
    "(`invalid_customer_token`) or past its life (`customer_token_expired`); a spent refresh "
    "token came back and its whole sign-in is revoked (`refresh_token_reused`); a wrong email, "
    "password or code, the same answer for an unknown email (`invalid_credentials`).",
)

_RATE_HEADERS = {
    "RateLimit-Limit": {
        "description": "The key's requests per minute.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in this window.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window resets.",
        "schema": {"type": "integer"},
    },
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}

_PAGINATION_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"How many objects to return, 1 to {MAX_LIMIT}.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "starting_after",
        "in": "query",
        "required": False,
        "description": "An object id: return the objects after it (lists are ordered by id).",
        "schema": {"type": "integer", "minimum": 0},
    },
]
_SITE_HEADER = {
    "name": "X-Site-ID",
    "in": "header",
    "required": False,
    "description": "A market code (or id) that narrows a key for every market to that one "
    "market; a market-scoped key may only name its own. Sent with the legacy `X-API-Key`, "
    "or with `Authorization`. Unknown market: 404 `not_found`.",
    "schema": {"type": "string"},
}


def openapi_path(rule: str) -> str:
    """A Flask rule relative to /api/v1 as an OpenAPI path: `<int:id>` becomes `{id}`."""
    return rule_template(rule[len(API_PREFIX) :])


def api_rules(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) served under /api/v1, OPTIONS and HEAD aside."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule != API_PREFIX and not rule.rule.startswith(API_PREFIX + "/"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return sorted(found, key=lambda pair: (pair[0].rule, pair[1]))


def component_schemas() -> dict[str, Any]:
    """The JSON Schema of every model the document names: bodies as parsed, responses as sent."""
    models: list[tuple[type[BaseModel], Any]] = [(Error, "serialization")]
    for operation in OPERATIONS.values():
        if operation.body is not None:
            models.append((operation.body, "validation"))
        if operation.response is not None:
            models.append((operation.response, "serialization"))
    _, schema = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF_TEMPLATE)
    return schema["$defs"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF_TEMPLATE.format(model=name)}


def _key_codes(status: int) -> tuple[str, ...]:
    """The codes of a status that any operation may answer (the shopper ones aside)."""
    shopper = SHOPPER_ERROR_CODES.get(status, ())
    return tuple(code for code in ERROR_CODES[status] if code not in shopper)


def error_responses() -> dict[str, Any]:
    """One reusable response per error status, its `code` an enum of the codes it carries (and
    the shopper operations' 401 with the shopper codes too)."""
    responses = {}
    described = [
        (status, name, text, _key_codes(status)) for status, (name, text) in _RESPONSE_TEXT.items()
    ]
    described.append((401, *_SHOPPER_UNAUTHORIZED, ERROR_CODES[401]))
    for status, name, text, codes in described:
        listed = ", ".join(f"`{code}`" for code in codes)
        schema = {
            "allOf": [
                _ref("Error"),
                {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {"code": {"type": "string", "enum": list(codes)}},
                        }
                    },
                },
            ]
        }
        response: dict[str, Any] = {
            "description": f"{listed}: {text}",
            "content": {
                "application/json": {
                    "schema": schema,
                    "example": {"error": {"code": codes[0], "message": text}},
                }
            },
        }
        if status == 429:
            response["headers"] = _RETRY_AFTER
        responses[name] = response
    return responses


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for match in RULE_ARGUMENT.finditer(rule.rule):
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 0, "maximum": ID_MAX}
            if match["converter"] == "int"
            else {"type": "string"}
        )
        parameters.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return parameters


def _describe(view: Any) -> tuple[str, str]:
    """Summary and description from the view's docstring."""
    doc = (getattr(view, "__doc__", None) or "").strip()
    summary = doc.splitlines()[0] if doc else ""
    return summary, doc


def _error_ref(status: int, meta: Operation) -> dict[str, str]:
    shopper = status == 401 and (meta.shopper_errors or meta.signed_in is not None)
    name = _SHOPPER_UNAUTHORIZED[0] if shopper else _RESPONSE_TEXT[status][0]
    return {"$ref": f"#/components/responses/{name}"}


def _customer_token_parameter(required: bool) -> dict[str, Any]:
    """The shopper's access token header, as a documented parameter."""
    prefix = tokens.PREFIXES[tokens.ACCESS]
    if required:
        text = "The signed-in shopper's access token (from a sign-in or a refresh)."
    else:
        text = "A signed-in shopper's access token: what is made belongs to the shopper."
    return {
        "name": CUSTOMER_TOKEN_HEADER,
        "in": "header",
        "required": required,
        "description": f"{text} A bad or expired one is a 401, never a guest's call.",
        "schema": {
            "type": "string",
            "pattern": f"^{prefix}[0-9A-Za-z]{{{tokens.TOKEN_LENGTH - len(prefix)}}}$",
        },
    }


def _operation(app: Flask, rule: Rule, method: str, path: str) -> dict[str, Any]:
    meta = OPERATIONS.get((method, path), Operation("Other"))
    view = app.view_functions.get(rule.endpoint)
    summary, description = _describe(view)
    public = auth.is_public(view)
    scope = auth.ROUTE_SCOPES.get(rule.endpoint) or auth.required_scope_of(view)
    operation: dict[str, Any] = {
        "operationId": rule.endpoint.removeprefix("api."),
        "summary": summary or f"{method} {path}",
        "tags": [meta.tag],
    }
    if public:
        operation["security"] = []
        description += "\n\nNo key needed."
    elif scope:
        operation["x-required-scope"] = scope
        key_types = " or ".join(sorted(SCOPES[scope].key_types)) if scope in SCOPES else "any"
        description += f"\n\nRequired scope: `{scope}` ({key_types} keys)."
    else:
        description += "\n\nAny valid key; no scope needed."
    operation["description"] = description.strip()

    parameters = _path_parameters(rule)
    if meta.paginated:
        parameters += _PAGINATION_PARAMETERS
    for name, schema, text in meta.query:
        parameters.append(
            {"name": name, "in": "query", "required": False, "description": text, "schema": schema}
        )
    if not public:
        parameters.append(_SITE_HEADER)
    if meta.signed_in is not None:
        parameters.append(_customer_token_parameter(meta.signed_in == "required"))
    if parameters:
        operation["parameters"] = parameters

    if meta.body is not None:
        operation["requestBody"] = {
            "required": not meta.body_optional,
            "content": {"application/json": {"schema": _ref(meta.body.__name__)}},
        }

    success: dict[str, Any] = {
        "description": meta.answer
        or {"201": "Created", "202": "Accepted", "204": "Deleted; no body."}.get(meta.status, "OK")
    }
    if meta.status != "204":
        schema = _ref(meta.response.__name__) if meta.response else {"type": "object"}
        success["content"] = {"application/json": {"schema": schema}}
    if not public:
        success["headers"] = _RATE_HEADERS
    responses: dict[str, Any] = {meta.status: success}
    statuses = set(meta.errors) | {500}
    if meta.body is not None or meta.paginated or meta.query or path.startswith("/checkouts"):
        statuses.add(400)
    if not public:  # unknown ids, other merchants' objects, or an unknown X-Site-ID market
        statuses |= {401, 403, 404, 429}
    if meta.body is not None:
        statuses |= {413, 415}
    for status in sorted(statuses):
        responses[str(status)] = _error_ref(status, meta)
    operation["responses"] = responses
    return operation


def server_url(app: Flask) -> str:
    """The API's absolute base URL, from PORTAL_URL (where the portal is reached)."""
    return app.config["PORTAL_URL"].rstrip("/") + API_PREFIX


def build_document(app: Flask) -> dict[str, Any]:
    """The whole OpenAPI document for the app's /api/v1 routes."""
    paths: dict[str, dict[str, Any]] = {}
    for rule, method in api_rules(app):
        path = openapi_path(rule.rule)
        paths.setdefault(path, {})[method.lower()] = _operation(app, rule, method, path)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Merchant store API",
            "version": "1",
            "description": (
                "Storefront (publishable keys) and back-office (secret keys) API of the store. "
                "Send `Authorization: Bearer <key>`; the legacy `X-API-Key` header (with an "
                "optional `X-Site-ID` market) still works but its responses carry "
                "`Deprecation`, `Sunset` and `Link` headers. Lists take `limit` and "
                '`starting_after` and answer `{"data": [...], "has_more": bool}`. Money is '
                "in integer minor units with its currency; timestamps are ISO 8601 in UTC. "
                'Errors are `{"error": {"code", "message"}}`.'
            ),
        },
        "servers": [{"url": server_url(app)}],
        "security": [{"bearerAuth": []}, {"legacyApiKey": []}],
        "tags": [
            {"name": "Storefront", "description": "Publishable or secret keys."},
            {"name": "Admin", "description": "Secret keys only."},
            {
                "name": "Shoppers",
                "description": "A storefront's shoppers (`customer:auth`): register, sign in "
                "with a password or a mailed code, refresh, reset a password, read their own "
                "orders. Signed-in calls send the access token as `X-Customer-Token` beside "
                "the key.",
            },
            {"name": "Key", "description": "The calling key."},
            {"name": "Meta", "description": "This document."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "pk_live_… / sk_live_…",
                    "description": "A publishable or secret key.",
                },
                "legacyApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "Deprecated; use the Authorization header.",
                },
            },
            "schemas": component_schemas(),
            "responses": error_responses(),
        },
    }


def blueprint_registered(app: Flask) -> None:
    """Build the document once, after every API route is registered, and keep it as JSON text
    (in the models' field order, which is the order a reader expects)."""
    app.extensions[DOCUMENT_KEY] = json.dumps(build_document(app), ensure_ascii=False)


@bp.get("/openapi.json")
@auth.public
def openapi_document() -> Response:
    """This OpenAPI 3.1 document, describing every /api/v1 route."""
    return Response(current_app.extensions[DOCUMENT_KEY], mimetype="application/json")
