"""The signed-in merchant's keys, for the pages of the keys and usage areas."""

from __future__ import annotations

from flask import abort, g

from portal.keys import service
from portal.keys.models import ApiKey


def key_or_404(key_id: int) -> ApiKey:
    """The signed-in merchant's key, or 404 (another merchant's key does not exist here)."""
    try:
        return service.get_key(g.merchant.id, key_id)
    except service.KeyNotFound:
        abort(404)
