"""The bridge between the API and the store: the caller's tenant, and store errors turned into
the API's JSON errors."""

from __future__ import annotations

from flask import Response

from portal.api import bp
from portal.api.auth import current_key
from portal.api.errors import ApiError, error_response
from portal.store.common import Conflict, NotFound, OtherMarketsAffected, StoreError, Tenant


def current_tenant() -> Tenant:
    """Whose data the calling key sees: its merchant, and its effective market (None: all)."""
    key = current_key()
    return Tenant(merchant_id=key.merchant_id, market_id=key.market_id)


def api_error(error: StoreError) -> ApiError:
    """The API error for a broken store rule (SPEC error table)."""
    if isinstance(error, NotFound):
        return ApiError(404, "not_found", error.message)
    if isinstance(error, Conflict):
        return ApiError(409, "conflict", error.message)
    if isinstance(error, OtherMarketsAffected):
        return ApiError(403, "insufficient_scope", error.message)
    return ApiError(400, "invalid_request", error.message)


@bp.errorhandler(StoreError)
def _store_error(error: StoreError) -> Response:
    """Views stay linear: a store error raised anywhere becomes the API's JSON error."""
    api = api_error(error)
    return error_response(api.status, api.code, api.message)
