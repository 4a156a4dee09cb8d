"""Storefront checkout: a cart becomes a checkout session (chk_…) and a pending order, which
the storefront completes within the store's hold time."""

from __future__ import annotations

from typing import Any

from portal.api import bp
from portal.api.auth import require_scope
from portal.api.customers import optional_customer
from portal.api.errors import json_body
from portal.api.schemas.orders import CheckoutCreate, CheckoutSession
from portal.api.tenancy import current_tenant
from portal.store import checkouts


@bp.post("/checkouts")
@require_scope("checkout:create")
def create_checkout() -> tuple[dict[str, Any], int]:
    """Check out `cart_id` for `email`: reserves inventory, creates the customer and order."""
    body, shopper = json_body(), optional_customer()
    if shopper is not None:  # X-Customer-Token: the order is the shopper's, email optional
        body = {**body, "email": body.get("email", shopper.customer.email)}
    customer_id = shopper.customer.id if shopper else None
    result = checkouts.checkout(
        current_tenant(), CheckoutCreate.parse(body), customer_id=customer_id
    )
    return CheckoutSession.of(result.session).body(), 201


@bp.post("/checkouts/<checkout_id>/complete")
@require_scope("checkout:create")
def complete_checkout(checkout_id: str) -> dict[str, Any]:
    """Complete a checkout before it expires: its order becomes `placed` and keeps its stock."""
    session = checkouts.complete_checkout(current_tenant(), checkout_id)
    return CheckoutSession.of(session).body()
