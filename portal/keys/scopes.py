"""The scope registry: the single source of truth for what each scope permits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portal.keys.tokens import KEY_TYPES

_BOTH = frozenset({"publishable", "secret"})
_SECRET = frozenset({"secret"})


@dataclass(frozen=True)
class Scope:
    """One permission a key may hold."""

    name: str
    description: str
    key_types: frozenset[str]

    @property
    def secret_only(self) -> bool:
        """True when publishable keys may not hold this scope."""
        return "publishable" not in self.key_types


SCOPES: dict[str, Scope] = {
    scope.name: scope
    for scope in (
        Scope("catalog:read", "Read products and markets of the store.", _BOTH),
        Scope("cart:write", "Create and change carts.", _BOTH),
        Scope(
            "checkout:create",
            "Turn a cart into a checkout session (chk_…) and a pending order.",
            _BOTH,
        ),
        Scope(
            "customer:auth",
            "Shoppers register, sign in, refresh, sign out, reset passwords, read their own "
            "orders.",
            _BOTH,
        ),
        Scope(
            "products:read",
            "Admin product list with unpublished products and inventory.",
            _SECRET,
        ),
        Scope("products:write", "Create, update, delete products.", _SECRET),
        Scope("orders:read", "List and read orders.", _SECRET),
        Scope("orders:write", "Fulfil and cancel orders.", _SECRET),
        Scope("customers:read", "Read customers.", _SECRET),
        Scope("customers:write", "Update customers, sign a customer out everywhere.", _SECRET),
        Scope("analytics:read", "Usage and sales figures.", _SECRET),
        Scope("webhooks:read", "Webhook endpoints and their delivery log.", _SECRET),
        Scope("webhooks:write", "Create, update, delete, test endpoints; redeliver.", _SECRET),
        Scope("settings:read", "The store's settings.", _SECRET),
        Scope("settings:write", "The store's settings.", _SECRET),
    )
}

DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    "publishable": ("catalog:read", "cart:write", "checkout:create", "customer:auth"),
    "secret": ("products:read", "orders:read"),
}


class ScopeError(ValueError):
    """A scope selection a key may not hold; the message names the scope."""


def _check_key_type(key_type: str) -> None:
    if key_type not in KEY_TYPES:
        raise ScopeError(f'Unknown key type "{key_type}".')


def scopes_for(key_type: str) -> list[Scope]:
    """Return the scopes a key type may hold, in registry order."""
    _check_key_type(key_type)
    return [scope for scope in SCOPES.values() if key_type in scope.key_types]


def validate_scopes(key_type: str, names: Iterable[str]) -> tuple[str, ...]:
    """Return the selected scope names deduplicated in registry order, or raise ScopeError."""
    _check_key_type(key_type)
    selected = set()
    for name in names:
        scope = SCOPES.get(name)
        if scope is None:
            raise ScopeError(f'Unknown scope "{name}".')
        if key_type not in scope.key_types:
            raise ScopeError(f'"{name}" is for secret keys only.')
        selected.add(name)
    return tuple(name for name in SCOPES if name in selected)
