"""The store's settings for secret keys: `GET` / `PATCH /api/v1/admin/settings`."""

from __future__ import annotations

from typing import Any

from portal.api import bp
from portal.api.auth import require_scope
from portal.api.errors import ApiError, parse_body
from portal.api.schemas.settings import Settings, SettingsUpdate
from portal.api.tenancy import current_tenant
from portal.settings import service


@bp.get("/admin/settings")
@require_scope("settings:read")
def get_settings() -> dict[str, Any]:
    """The store's settings."""
    return Settings.of(service.get_settings(current_tenant().merchant_id)).body()


@bp.patch("/admin/settings")
@require_scope("settings:write")
def update_settings() -> dict[str, Any]:
    """Change the settings given in the body; the others stay as they are.

    Settings belong to the whole store: a market-scoped key may read them, not change them.
    """
    tenant = current_tenant()
    if tenant.market_id is not None:
        raise ApiError(
            403,
            "insufficient_scope",
            "Store settings apply to every market; this key is limited to one market. "
            "Use a key for all markets to change them.",
        )
    settings, _changed = service.update_settings(tenant.merchant_id, parse_body(SettingsUpdate))
    return Settings.of(settings).body()
