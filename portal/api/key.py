"""`GET /api/v1/key`: what the calling key is and may do."""

from __future__ import annotations

from typing import Any

from portal.api import bp
from portal.api.auth import current_key
from portal.api.schemas.key import Key
from portal.keys.scopes import SCOPES


@bp.get("/key")
def key_info() -> dict[str, Any]:
    """The calling key's id, type, mode, scopes, market, rate limit and expiry. No scope needed."""
    key = current_key()
    return Key(
        id=key.id,
        type=key.key_type,
        mode=key.mode,
        scopes=[name for name in SCOPES if name in key.scopes],
        market=key.key_market_code,
        rate_limit=key.rate_limit,
        expires_at=key.expires_at,
        allowed_ip_ranges=list(key.allowed_ip_ranges) if key.is_secret else None,
        allowed_origins=None if key.is_secret else list(key.allowed_origins),
    ).body()
