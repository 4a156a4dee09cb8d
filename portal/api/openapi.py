"""The OpenAPI 3.1 document of `/api/v1`, built from the app's own routes so none is missed."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from werkzeug.routing import Rule

from portal.api import auth, bp
from portal.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from portal.keys.scopes import SCOPES
from portal.routing import RULE_ARGUMENT, rule_template
from portal.store import service as store
from portal.usage.models import OUTCOMES as USAGE_OUTCOMES

API_PREFIX = "/api/v1"
OPENAPI_VERSION = "3.1.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [schema_type, "null"], **extra}


def _list_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "has_more"],
        "properties": {
            "data": {"type": "array", "items": _ref(name)},
            "has_more": {
                "type": "boolean",
                "description": "Whether more objects follow; pass the last id as "
                "`starting_after` to get them.",
            },
        },
    }


TIMESTAMP = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC (Z)."}
MONEY = {"type": "integer", "minimum": 0, "description": "Minor units of the currency."}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217, upper case."}

_PRODUCT_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "object": {"const": "product"},
    "name": {"type": "string", "maxLength": store.NAME_MAX},
    "description": {"type": "string"},
    "price": MONEY,
    "currency": CURRENCY,
    "sku": _nullable("string", maxLength=store.SKU_MAX),
    "in_stock": {"type": "boolean"},
    "markets": {"type": "array", "items": {"type": "string"}, "description": "Market codes."},
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
}
_LINE = {
    "type": "object",
    "required": ["product_id", "name", "unit_price", "quantity", "line_total"],
    "properties": {
        "product_id": _nullable("integer", description="Null once the product is deleted."),
        "name": {"type": "string"},
        "unit_price": MONEY,
        "quantity": {"type": "integer", "minimum": 1},
        "line_total": MONEY,
    },
}
_ITEM_INPUT = {
    "type": "object",
    "required": ["product_id"],
    "additionalProperties": False,
    "properties": {
        "product_id": {"type": "integer", "minimum": 1},
        "quantity": {
            "type": "integer",
            "minimum": 1,
            "maximum": store.QUANTITY_MAX,
            "default": 1,
        },
    },
}
_PRODUCT_INPUT_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": store.NAME_MAX},
    "description": {"type": "string", "maxLength": store.DESCRIPTION_MAX},
    "price": {**MONEY, "maximum": store.PRICE_MAX},
    "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "Upper-cased."},
    "sku": _nullable("string", maxLength=store.SKU_MAX, description="Unique per merchant."),
    "inventory": {"type": "integer", "minimum": 0, "maximum": store.INVENTORY_MAX},
    "published": {"type": "boolean"},
    "markets": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Codes of the merchant's markets. A market-scoped key may only name "
        "its own market (the default when creating).",
    },
}
_ORDER_STATUS = {"type": "string", "enum": list(store.ORDER_STATUSES)}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "examples": ["invalid_request", "not_found", "insufficient_scope"],
                    },
                    "message": {"type": "string"},
                },
            }
        },
    },
    "Product": {
        "type": "object",
        "required": list(_PRODUCT_PROPERTIES),
        "properties": _PRODUCT_PROPERTIES,
    },
    "AdminProduct": {
        "type": "object",
        "required": [*_PRODUCT_PROPERTIES, "inventory", "published"],
        "properties": {
            **_PRODUCT_PROPERTIES,
            "inventory": {"type": "integer", "minimum": 0},
            "published": {"type": "boolean"},
        },
    },
    "ProductCreate": {
        "type": "object",
        "required": ["name", "price", "currency"],
        "additionalProperties": False,
        "properties": _PRODUCT_INPUT_PROPERTIES,
    },
    "ProductUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": _PRODUCT_INPUT_PROPERTIES,
        "description": "Only the fields given change.",
    },
    "Market": {
        "type": "object",
        "required": ["id", "object", "code", "name"],
        "properties": {
            "id": {"type": "integer"},
            "object": {"const": "market"},
            "code": {"type": "string"},
            "name": {"type": "string"},
        },
    },
    "CartLine": _LINE,
    "Cart": {
        "type": "object",
        "required": [
            "id",
            "object",
            "status",
            "market",
            "currency",
            "items",
            "total",
            "created_at",
            "updated_at",
        ],
        "properties": {
            "id": {"type": "string", "pattern": "^cart_"},
            "object": {"const": "cart"},
            "status": {"type": "string", "enum": [store.CART_OPEN, store.CART_CHECKED_OUT]},
            "market": _nullable("string", description="Code of the cart's market."),
            "currency": _nullable("string", description="Null while the cart is empty."),
            "items": {"type": "array", "items": _ref("CartLine")},
            "total": MONEY,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    },
    "CartCreate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"items": {"type": "array", "items": _ref("CartItemCreate")}},
    },
    "CartItemCreate": _ITEM_INPUT,
    "CheckoutCreate": {
        "type": "object",
        "required": ["cart_id", "email"],
        "additionalProperties": False,
        "properties": {
            "cart_id": {"type": "string"},
            "email": {"type": "string", "format": "email", "maxLength": store.EMAIL_MAX},
        },
    },
    "CheckoutSession": {
        "type": "object",
        "required": ["id", "object", "cart_id", "email", "order", "created_at"],
        "properties": {
            "id": {"type": "string", "pattern": "^chk_"},
            "object": {"const": "checkout_session"},
            "cart_id": {"type": "string"},
            "email": {"type": "string"},
            "order": _ref("Order"),
            "created_at": TIMESTAMP,
        },
    },
    "Order": {
        "type": "object",
        "required": [
            "id",
            "object",
            "status",
            "market",
            "customer",
            "currency",
            "items",
            "total",
            "created_at",
            "updated_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "object": {"const": "order"},
            "status": _ORDER_STATUS,
            "market": _nullable("string"),
            "customer": {
                "type": "object",
                "required": ["id", "email"],
                "properties": {"id": {"type": "integer"}, "email": {"type": "string"}},
            },
            "currency": CURRENCY,
            "items": {"type": "array", "items": _ref("CartLine")},
            "total": MONEY,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    },
    "Customer": {
        "type": "object",
        "required": ["id", "object", "email", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "object": {"const": "customer"},
            "email": {"type": "string"},
            "created_at": TIMESTAMP,
        },
    },
    "UsageFigures": {
        "type": "object",
        "description": "Calls made with valid keys between start and end (total_calls: all time).",
        "required": ["start", "end", "total_calls", "calls_last_24h", "calls", "outcomes"],
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "total_calls": {"type": "integer"},
            "calls_last_24h": {"type": "integer"},
            "calls": {"type": "integer"},
            "success_rate": _nullable("number"),
            "avg_latency_ms": _nullable("number"),
            "p95_latency_ms": _nullable("number"),
            "outcomes": {
                "type": "object",
                "properties": {name: {"type": "integer"} for name in USAGE_OUTCOMES},
            },
            "top_endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "method": {"type": "string"},
                        "route": {"type": "string"},
                        "calls": {"type": "integer"},
                        "errors": {"type": "integer"},
                    },
                },
            },
        },
    },
    "Usage": {
        "type": "object",
        "required": ["object", "start", "end", "total", "keys", "sales"],
        "properties": {
            "object": {"const": "usage"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "total": _ref("UsageFigures"),
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "label", "type", "state", "last_used_at", "usage"],
                    "properties": {
                        "id": {"type": "integer"},
                        "label": {"type": "string"},
                        "type": {"type": "string", "enum": ["publishable", "secret"]},
                        "state": {"type": "string", "enum": ["active", "expired", "revoked"]},
                        "last_used_at": _nullable("string", format="date-time"),
                        "usage": _ref("UsageFigures"),
                    },
                },
            },
            "sales": {
                "type": "object",
                "required": ["orders", "revenue"],
                "properties": {
                    "orders": {
                        "type": "object",
                        "description": "Number of orders by status.",
                        "properties": {s: {"type": "integer"} for s in store.ORDER_STATUSES},
                    },
                    "revenue": {
                        "type": "array",
                        "description": "Order totals in minor units, by currency and status.",
                        "items": {
                            "type": "object",
                            "required": ["currency", *store.ORDER_STATUSES],
                            "properties": {
                                "currency": CURRENCY,
                                **{s: {"type": "integer"} for s in store.ORDER_STATUSES},
                            },
                        },
                    },
                },
            },
        },
    },
    "Key": {
        "type": "object",
        "description": "The calling key.",
        "properties": {
            "id": {"type": "integer"},
            "type": {"type": "string", "enum": ["publishable", "secret"]},
            "mode": {"type": "string", "enum": ["live", "test"]},
            "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}},
            "market": _nullable("string", description="Null: every market of the merchant."),
            "rate_limit": {"type": "integer", "description": "Requests per minute."},
            "expires_at": _nullable("string", format="date-time"),
            "allowed_origins": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Publishable keys only.",
            },
            "allowed_ip_ranges": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Secret keys only.",
            },
        },
        "required": ["id", "type", "mode", "scopes", "market", "rate_limit", "expires_at"],
    },
}
for _name in ("Product", "AdminProduct", "Market", "Order", "Customer"):
    SCHEMAS[f"{_name}List"] = _list_of(_name)

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


def _error_response(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
        **extra,
    }


RESPONSES: dict[str, Any] = {
    "BadRequest": _error_response(
        "`invalid_request`: malformed JSON or a bad parameter or field (the message names it), "
        "or a store rule the request breaks (out of stock, checked-out cart, order not pending)."
    ),
    "Unauthorized": _error_response(
        "`missing_api_key` (no key), `invalid_api_key` (malformed, bad checksum, unknown key "
        "or inactive plan), `api_key_revoked`, `api_key_expired`."
    ),
    "Forbidden": _error_response(
        "`insufficient_scope` (the message names the scope needed), `origin_not_allowed`, "
        "`secret_key_in_browser`, `ip_not_allowed`."
    ),
    "NotFound": _error_response(
        "`not_found`: no such object for this merchant (or for the key's market), or no "
        "market named by `X-Site-ID` for this key."
    ),
    "RequestTooLarge": _error_response("`request_too_large`: the body is over the size limit."),
    "UnsupportedMediaType": _error_response(
        "`unsupported_media_type`: the body is not `application/json`."
    ),
    "TooManyRequests": _error_response(
        "`rate_limited`: over the key's limit.",
        headers={
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"},
            }
        },
    ),
    "ServerError": _error_response("Unexpected error; the message carries a request id."),
}

# What each route takes and returns, keyed by (method, path relative to /api/v1). A route
# missing here still appears in the document, described from its view's docstring.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/key"): {"tag": "Key", "response": "Key"},
    ("GET", "/openapi.json"): {"tag": "Meta", "response": None},
    ("GET", "/catalog/products"): {"tag": "Storefront", "response": "ProductList", "list": True},
    ("GET", "/catalog/products/{product_id}"): {"tag": "Storefront", "response": "Product"},
    ("GET", "/catalog/markets"): {"tag": "Storefront", "response": "MarketList", "list": True},
    ("POST", "/carts"): {
        "tag": "Storefront",
        "status": "201",
        "body": "CartCreate",
        "body_optional": True,
        "response": "Cart",
    },
    ("POST", "/carts/{cart_id}/items"): {
        "tag": "Storefront",
        "body": "CartItemCreate",
        "response": "Cart",
    },
    ("GET", "/carts/{cart_id}"): {"tag": "Storefront", "response": "Cart"},
    ("POST", "/checkouts"): {
        "tag": "Storefront",
        "status": "201",
        "body": "CheckoutCreate",
        "response": "CheckoutSession",
    },
    ("GET", "/admin/products"): {
        "tag": "Admin",
        "response": "AdminProductList",
        "list": True,
        "query": [("published", {"type": "boolean"}, "Only published (true) or drafts.")],
    },
    ("POST", "/admin/products"): {
        "tag": "Admin",
        "status": "201",
        "body": "ProductCreate",
        "response": "AdminProduct",
    },
    ("GET", "/admin/products/{product_id}"): {"tag": "Admin", "response": "AdminProduct"},
    ("PATCH", "/admin/products/{product_id}"): {
        "tag": "Admin",
        "body": "ProductUpdate",
        "response": "AdminProduct",
    },
    ("DELETE", "/admin/products/{product_id}"): {
        "tag": "Admin",
        "status": "204",
        "response": None,
    },
    ("GET", "/admin/orders"): {
        "tag": "Admin",
        "response": "OrderList",
        "list": True,
        "query": [("status", _ORDER_STATUS, "Only orders in this status.")],
    },
    ("GET", "/admin/orders/{order_id}"): {"tag": "Admin", "response": "Order"},
    ("POST", "/admin/orders/{order_id}/fulfill"): {
        "tag": "Admin",
        "response": "Order",
        "bad_request": True,
    },
    ("POST", "/admin/orders/{order_id}/cancel"): {
        "tag": "Admin",
        "response": "Order",
        "bad_request": True,
    },
    ("GET", "/admin/customers"): {"tag": "Admin", "response": "CustomerList", "list": True},
    ("GET", "/admin/usage"): {
        "tag": "Admin",
        "response": "Usage",
        "query": [
            ("start", {"type": "string"}, "ISO 8601 date or time (UTC); default 30 days ago."),
            ("end", {"type": "string"}, "ISO 8601 date or time (UTC); default now."),
        ],
    },
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


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for match in RULE_ARGUMENT.finditer(rule.rule):
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 0, "maximum": store.ID_MAX}
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


def _operation(app: Flask, rule: Rule, method: str, path: str) -> dict[str, Any]:
    meta = OPERATIONS.get((method, path), {})
    view = app.view_functions.get(rule.endpoint)
    summary, description = _describe(view)
    public = auth.is_public(view)
    scope = auth.ROUTE_SCOPES.get(rule.endpoint) or auth.required_scope_of(view)
    path_parameters = _path_parameters(rule)
    operation: dict[str, Any] = {
        "operationId": rule.endpoint.removeprefix("api."),
        "summary": summary or f"{method} {path}",
        "tags": [meta.get("tag", "Other")],
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

    parameters = list(path_parameters)
    if meta.get("list"):
        parameters += _PAGINATION_PARAMETERS
    for name, schema, text in meta.get("query", []):
        parameters.append(
            {"name": name, "in": "query", "required": False, "description": text, "schema": schema}
        )
    if not public:
        parameters.append(_SITE_HEADER)
    if parameters:
        operation["parameters"] = parameters

    if meta.get("body"):
        operation["requestBody"] = {
            "required": not meta.get("body_optional", False),
            "content": {"application/json": {"schema": _ref(meta["body"])}},
        }

    status = meta.get("status", "200")
    success: dict[str, Any] = {"description": "OK" if status != "201" else "Created"}
    if status == "204":
        success["description"] = "Deleted; no body."
    elif meta.get("response"):
        success["content"] = {"application/json": {"schema": _ref(meta["response"])}}
    else:
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    if not public:
        success["headers"] = _RATE_HEADERS
    responses: dict[str, Any] = {status: success}
    if meta.get("body") or meta.get("list") or meta.get("query") or meta.get("bad_request"):
        responses["400"] = {"$ref": "#/components/responses/BadRequest"}
    if not public:
        responses["401"] = {"$ref": "#/components/responses/Unauthorized"}
        responses["403"] = {"$ref": "#/components/responses/Forbidden"}
    if not public:  # unknown ids, other merchants' objects, or an unknown X-Site-ID market
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    if meta.get("body"):
        responses["413"] = {"$ref": "#/components/responses/RequestTooLarge"}
        responses["415"] = {"$ref": "#/components/responses/UnsupportedMediaType"}
    if not public:
        responses["429"] = {"$ref": "#/components/responses/TooManyRequests"}
    responses["500"] = {"$ref": "#/components/responses/ServerError"}
    operation["responses"] = responses
    return operation


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
                "in integer minor units with its currency; timestamps are ISO 8601 in UTC."
            ),
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{"bearerAuth": []}, {"legacyApiKey": []}],
        "tags": [
            {"name": "Storefront", "description": "Publishable or secret keys."},
            {"name": "Admin", "description": "Secret keys only."},
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
            "schemas": SCHEMAS,
            "responses": RESPONSES,
        },
    }


@bp.get("/openapi.json")
@auth.public
def openapi_document() -> dict[str, Any]:
    """This OpenAPI 3.1 document, describing every /api/v1 route."""
    return build_document(current_app)
