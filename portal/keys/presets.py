"""Starting points for the create form: the SPEC's presets, each a key type, scopes and a
suggested rate limit that the merchant can still change."""

from __future__ import annotations

from dataclasses import dataclass

from portal.keys.scopes import SCOPES


@dataclass(frozen=True)
class Preset:
    """A named set of scopes and a suggested rate limit for one key type."""

    slug: str
    name: str
    key_type: str
    scopes: tuple[str, ...]
    rate_limit: int
    # The scopes that make the preset what it is: until each is in the registry, the preset
    # is not offered (its endpoints do not exist yet).
    requires: tuple[str, ...]

    @property
    def registered_scopes(self) -> list[str]:
        """The preset's scopes that exist in the registry (only these are ever offered)."""
        return [name for name in self.scopes if name in SCOPES]

    @property
    def available(self) -> bool:
        """Whether every scope that defines the preset is registered."""
        return all(name in SCOPES for name in self.requires)


_STOREFRONT = ("catalog:read", "cart:write", "checkout:create")

PRESETS: tuple[Preset, ...] = (
    Preset("storefront", "Storefront", "publishable", (*_STOREFRONT, "customer:auth"), 600,
           requires=_STOREFRONT),
    Preset("mobile-app", "Mobile app", "publishable", (*_STOREFRONT, "customer:auth"), 300,
           requires=_STOREFRONT),
    Preset("analytics", "Analytics dashboard", "secret", ("analytics:read", "orders:read"), 60,
           requires=("analytics:read",)),
    Preset("fulfilment", "Order fulfilment", "secret",
           ("orders:read", "orders:write", "customers:read"), 120,
           requires=("orders:read", "orders:write")),
    Preset("inventory", "Inventory sync", "secret", ("products:read", "products:write"), 300,
           requires=("products:read", "products:write")),
    Preset("customer-portal", "Customer portal", "publishable",
           ("catalog:read", "customer:auth"), 300, requires=("customer:auth",)),
    Preset("webhooks", "Webhook management", "secret", ("webhooks:read", "webhooks:write"), 60,
           requires=("webhooks:read", "webhooks:write")),
)  # fmt: skip


def offered() -> list[Preset]:
    """The presets the create form offers: those whose defining scopes are registered."""
    return [preset for preset in PRESETS if preset.available]


def find(slug: str | None) -> Preset | None:
    """An offered preset by its slug."""
    return next((preset for preset in offered() if preset.slug == slug), None)
