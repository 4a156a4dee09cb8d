"""The webhook events of the key lifecycle (never the key itself: only its masked form)."""

from __future__ import annotations

from typing import Any

from portal.database import iso_utc
from portal.extensions import db
from portal.keys.models import ApiKey
from portal.outbox import emit


def key_event(key: ApiKey, event_type: str, **extra: Any) -> None:
    """Emit `api_key.<event>` for this key in the current transaction."""
    db.session.flush()
    emit(
        key.merchant_id,
        event_type,
        {
            "id": key.id,
            "object": "api_key",
            "type": key.key_type,
            "mode": key.mode,
            "label": key.label,
            "masked": key.masked,
            "market_id": key.market_id,
            "expires_at": iso_utc(key.expires_at) if key.expires_at else None,
            **extra,
        },
    )
