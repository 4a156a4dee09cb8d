"""The demo merchant `make run` seeds: two markets, a few products, one key of each type."""

from __future__ import annotations

from portal.accounts import service as accounts
from portal.extensions import db
from portal.keys import service as keys
from portal.store.models import Product

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a published demo login, not a secret
PRODUCTS = [
    ("Canvas tote bag", "Heavy cotton canvas, natural.", 2400, "TOTE-01", 40),
    ("Enamel mug", "350 ml, white with a blue rim.", 1800, "MUG-02", 120),
    ("Merino beanie", "Fine merino wool, charcoal.", 3200, "BEANIE-03", 25),
    ("Notebook A5", "Dotted pages, lay-flat binding.", 1500, "NOTE-04", 0),
]


STOREFRONT_ORIGINS = ["http://localhost:8000", "https://shop.example.com"]
# Every scope the README's admin examples use (the registry has no others the demo needs).
BACK_OFFICE_SCOPES = [
    "products:read",
    "products:write",
    "orders:read",
    "orders:write",
    "customers:read",
    "analytics:read",
]


def seed() -> dict[str, str]:
    """Create the demo merchant unless it exists; the new keys by label (empty if it existed).

    The keys are returned once, so `seed-demo` can print them; they are never stored.
    """
    if accounts.find_user(DEMO_EMAIL) is not None:
        return {}
    user = accounts.register(accounts.NewAccount(DEMO_EMAIL, DEMO_PASSWORD, "Demo Store"))
    merchant_id = user.merchant_id
    us = accounts.add_market(merchant_id, "US", "United States")
    eu = accounts.add_market(merchant_id, "EU", "European Union")
    for index, (name, description, price, sku, inventory) in enumerate(PRODUCTS):
        product = Product(
            merchant_id=merchant_id,
            name=name,
            description=description,
            price=price,
            currency="USD",
            sku=sku,
            inventory=inventory,
            published=index < 3,
            markets=[us, eu] if index % 2 == 0 else [us],
        )
        db.session.add(product)
    db.session.commit()
    actor = keys.Actor(name=DEMO_EMAIL, user_id=user.id)
    _, publishable = keys.create_key(
        merchant_id,
        "publishable",
        keys.KeySettings(label="Storefront", allowed_origins=STOREFRONT_ORIGINS),
        actor,
    )
    _, secret = keys.create_key(
        merchant_id,
        "secret",
        keys.KeySettings(
            label="Stock sync",
            description="Nightly inventory sync job and the README's admin examples.",
            scopes=BACK_OFFICE_SCOPES,
        ),
        actor,
    )
    return {"Storefront": publishable, "Stock sync": secret}
