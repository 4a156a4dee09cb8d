"""The error body every API error has, and the codes each status can carry."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from portal.api.schemas.base import ResponseModel

# The 401 codes only shopper endpoints answer (and carts and checkouts sent with a shopper's
# X-Customer-Token): the OpenAPI document lists them on those operations alone.
SHOPPER_ERROR_CODES: dict[int, tuple[str, ...]] = {
    401: (
        "invalid_customer_token",
        "customer_token_expired",
        "refresh_token_reused",
        "invalid_credentials",
    ),
}

# The SPEC's error table: the codes each status answers with.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("invalid_request",),
    401: (
        "missing_api_key",
        "invalid_api_key",
        "api_key_revoked",
        "api_key_expired",
        *SHOPPER_ERROR_CODES[401],
    ),
    403: ("insufficient_scope", "origin_not_allowed", "secret_key_in_browser", "ip_not_allowed"),
    404: ("not_found",),
    405: ("method_not_allowed",),
    409: ("conflict",),  # also an email already registered (shoppers, admin customer PATCH)
    413: ("request_too_large",),
    415: ("unsupported_media_type",),
    429: ("rate_limited",),
    500: ("internal_error",),
}


class ErrorDetail(ResponseModel):
    """What went wrong: a stable code to branch on and a message to show a developer."""

    # Optional fields are left out of the body when empty, so they are not required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    code: str = Field(examples=["invalid_request"])
    message: str = Field(examples=["price must be a non-negative integer (minor units)."])
    request_id: str | None = Field(
        default=None, description="Only on 500: quote it when contacting support."
    )


class Error(ResponseModel):
    """`{"error": {"code", "message"}}`."""

    error: ErrorDetail
