"""The API gate (`/api/v1`): authenticates every request by its key, then serves store resources."""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The gate first (it installs the before/after-request hooks), then the resources.
GATE_MODULES = ("errors", "auth", "cors", "limits", "key", "health")
RESOURCE_MODULES = (
    "tenancy",
    "catalog",
    "carts",
    "checkouts",
    "admin",
    "customers",
    "settings",
    "webhooks",
    "leaked",
    "openapi",
    "docs",
)


def register_api(app: Flask) -> None:
    """Import every API module (they attach routes and hooks to `bp`) and mount the blueprint."""
    from portal.extensions import csrf

    modules = [
        importlib.import_module(f"portal.api.{name}") for name in GATE_MODULES + RESOURCE_MODULES
    ]
    for module in modules:
        init_app = getattr(module, "init_app", None)
        if init_app is not None:
            init_app(app)
    csrf.exempt(bp)
    app.register_blueprint(bp)
    for module in modules:
        # Work that needs every route in place, such as building the OpenAPI document once.
        registered = getattr(module, "blueprint_registered", None)
        if registered is not None:
            registered(app)
