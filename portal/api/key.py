"""`GET /api/v1/key`: what the calling key is and may do."""

from __future__ import annotations

import functools
from typing import Any

from flask import Response, current_app, jsonify

from portal.api import bp
from portal.api.auth import AuthenticatedKey, current_key
from portal.api.schemas.key import Key
from portal.keys.scopes import SCOPES

# The answer depends on the key's settings alone; one per key (and settings) is kept.
BODY_CACHE_ENTRIES = 4096


@bp.get("/key")
def key_info() -> Response:
    """The calling key's id, type, mode, scopes, market, rate limit and expiry. No scope needed."""
    return current_app.response_class(_body_of(current_key()), mimetype="application/json")


def key_body(key: AuthenticatedKey) -> dict[str, Any]:
    """The key's description, as the API shows it."""
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


@functools.lru_cache(maxsize=BODY_CACHE_ENTRIES)
def _serialised(key: AuthenticatedKey) -> bytes:
    return jsonify(key_body(key)).get_data()


def _body_of(key: AuthenticatedKey) -> bytes:
    """The JSON body, serialised once per key settings (the key read this request is the key:
    every field it shows is part of the cache's key, so an edit is a new entry)."""
    # Fields the body does not show (the request's market, the legacy header) are left out of
    # the cache key, so they do not multiply entries.
    return _serialised(
        AuthenticatedKey(
            id=key.id,
            merchant_id=key.merchant_id,
            key_type=key.key_type,
            mode=key.mode,
            scopes=key.scopes,
            market_id=None,
            key_market_id=key.key_market_id,
            rate_limit=key.rate_limit,
            expires_at=key.expires_at,
            allowed_origins=key.allowed_origins,
            allowed_ip_ranges=key.allowed_ip_ranges,
            legacy_header=False,
            key_market_code=key.key_market_code,
        )
    )
