"""Storefront checkout: a cart becomes a checkout session (chk_…) and a pending order."""

from __future__ import annotations

from typing import Any

from portal.api import bp, serializers
from portal.api.auth import require_scope
from portal.api.customers import optional_customer
from portal.api.errors import json_body
from portal.store import service as store


@bp.post("/checkouts")
@require_scope("checkout:create")
def create_checkout() -> tuple[dict[str, Any], int]:
    """Check out `cart_id` for `email`: reserves inventory, creates the customer and order."""
    body, shopper = json_body(), optional_customer()
    if shopper is not None:  # X-Customer-Token: the order is the shopper's, email optional
        body = {**body, "email": body.get("email", shopper.customer.email)}
    customer_id = shopper.customer.id if shopper else None
    result = store.checkout(serializers.current_tenant(), body, customer_id=customer_id)
    return serializers.checkout(result), 201
