"""`GET /api/v1/key`: what the calling key is and may do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal.api import bp
from portal.api.auth import current_key
from portal.keys.scopes import SCOPES


def iso_utc(moment: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with a Z, or None."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.get("/key")
def key_info() -> dict[str, Any]:
    """The calling key's id, type, mode, scopes, market, rate limit and expiry. No scope needed."""
    key = current_key()
    body: dict[str, Any] = {
        "id": key.id,
        "type": key.key_type,
        "mode": key.mode,
        "scopes": [name for name in SCOPES if name in key.scopes],
        "market": key.key_market_code,
        "rate_limit": key.rate_limit,
        "expires_at": iso_utc(key.expires_at),
    }
    if key.is_secret:
        body["allowed_ip_ranges"] = list(key.allowed_ip_ranges)
    else:
        body["allowed_origins"] = list(key.allowed_origins)
    return body
