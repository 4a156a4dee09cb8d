"""Imports every model module, so the metadata (and Alembic) sees all tables."""

from portal.accounts.models import Market, Membership, Merchant, User
from portal.customers.models import (
    CustomerAccount,
    CustomerCode,
    CustomerPasswordReset,
    CustomerSession,
    CustomerToken,
)
from portal.keys.models import ApiKey, AuditEvent, KeyReveal
from portal.members.models import Invitation
from portal.outbox import OutboxEvent
from portal.store.models import Cart, CartItem, CheckoutSession, Customer, Order, OrderItem, Product
from portal.twofactor.models import RecoveryCode
from portal.usage.models import UsageCall, UsageEndpointDaily, UsageHourly
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Cart",
    "CartItem",
    "CheckoutSession",
    "Customer",
    "CustomerAccount",
    "CustomerCode",
    "CustomerPasswordReset",
    "CustomerSession",
    "CustomerToken",
    "KeyReveal",
    "Invitation",
    "Market",
    "Membership",
    "Merchant",
    "Order",
    "OrderItem",
    "OutboxEvent",
    "Product",
    "RecoveryCode",
    "UsageCall",
    "UsageEndpointDaily",
    "UsageHourly",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
