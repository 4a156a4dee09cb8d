"""Customers: shoppers known by email within one merchant."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.extensions import db
from portal.store import events
from portal.store.common import EMAIL_MAX, Page, Tenant, paginate
from portal.store.models import Customer, Order

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_valid_email(email: str) -> bool:
    """Whether a (normalised) email address looks deliverable: one @, a dot in the domain."""
    return len(email) <= EMAIL_MAX and EMAIL_PATTERN.match(email) is not None


def find_or_create_customer(merchant_id: int, email: str) -> Customer:
    """The merchant's customer with this (normalised) email, added to the session if new."""
    customer = db.session.scalar(
        select(Customer).where(Customer.merchant_id == merchant_id, Customer.email == email)
    )
    if customer is None:
        customer = Customer(merchant_id=merchant_id, email=email)
        db.session.add(customer)
        events.customer_created(customer)
    return customer


def list_customers(
    tenant: Tenant, limit: int = 20, starting_after: int | None = None
) -> Page[Customer]:
    """The tenant's customers by id (a market-scoped tenant: those who ordered in its market)."""
    query = select(Customer).where(Customer.merchant_id == tenant.merchant_id)
    if tenant.market_id is not None:
        query = query.where(
            Customer.id.in_(select(Order.customer_id).where(Order.market_id == tenant.market_id))
        )
    return paginate(query, Customer.id, limit, starting_after)
