"""Password hashing with argon2 through passlib (the libpass fork)."""

from __future__ import annotations

from flask import current_app
from passlib.hash import argon2


def _hasher():  # noqa: ANN202 - passlib's handler type is dynamic
    """The argon2 handler with the cost settings of this app."""
    cost = current_app.config.get("PASSWORD_HASH_COST")
    if cost:
        return argon2.using(memory_cost=cost["memory_cost"], time_cost=cost["time_cost"])
    return argon2


def hash_password(password: str) -> str:
    """Hash a password for storage."""
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against its stored hash."""
    return _hasher().verify(password, password_hash)


def burn_verification_time() -> None:
    """Spend about as long as a real verification, so unknown emails are not revealed by timing."""
    _hasher().hash("not-a-real-password")
