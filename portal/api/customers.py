"""Shopper accounts for storefronts (`customer:auth`), and the admin customer endpoints.

A storefront sends its key as usual and, once the shopper is signed in, the shopper's access
token in `X-Customer-Token`. The gate has checked the key, its origin, rate and scope before
any view here runs; `current_customer()` then resolves the shopper token (a malformed one is
refused without touching the database).
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, request

from portal.accounts.models import Merchant
from portal.api import bp
from portal.api.auth import current_key, require_scope
from portal.api.errors import ApiError, error_response, parse_body
from portal.api.pagination import list_response, page_params
from portal.api.schemas.customers import (
    Accepted,
    AdminCustomer,
    CustomerProfile,
    CustomerSignOut,
    ShopperSignIn,
)
from portal.api.schemas.orders import Order, OrderList
from portal.customers import limits
from portal.customers import service as customers
from portal.customers.schemas import (
    AdminCustomerUpdate,
    EmailBody,
    ProfileUpdate,
    RefreshBody,
    RegisterBody,
    ResetConfirmBody,
    SessionBody,
)
from portal.extensions import db
from portal.keys import origins
from portal.store.service import ID_MAX

CUSTOMER_TOKEN_HEADER = "X-Customer-Token"  # noqa: S105 - a header name

# Each shopper error as the API answers it: status and code.
ERRORS: dict[type[customers.CustomerError], tuple[int, str]] = {
    customers.InvalidCredentials: (401, "invalid_credentials"),
    customers.InvalidToken: (401, "invalid_customer_token"),
    customers.TokenExpired: (401, "customer_token_expired"),
    customers.TokenReused: (401, "refresh_token_reused"),
    customers.EmailTaken: (409, "conflict"),
    customers.InvalidResetToken: (400, "invalid_request"),
    customers.CustomerNotFound: (404, "not_found"),
}


def _client() -> customers.Client:
    return customers.Client(ip=request.remote_addr, user_agent=request.user_agent.string[:255])


def _too_many(exceeded: limits.Exceeded) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"Too many attempts; retry in {exceeded.retry_after} s.",
        {"Retry-After": str(exceeded.retry_after)},
    )


def _limit_ip() -> None:
    exceeded = limits.per_ip(request.remote_addr)
    if exceeded is not None:
        raise _too_many(exceeded)


def _limit_email(action: str, email: str) -> None:
    exceeded = limits.per_email(current_key().merchant_id, action, email)
    if exceeded is not None:
        raise _too_many(exceeded)


def current_customer() -> customers.Shopper:
    """The signed-in shopper of this request (`X-Customer-Token`), or 401."""
    token = (request.headers.get(CUSTOMER_TOKEN_HEADER) or "").strip()
    if not token:
        raise ApiError(
            401,
            "invalid_customer_token",
            f"Sign the shopper in and send the access token in {CUSTOMER_TOKEN_HEADER}.",
        )
    cached = g.get("api_customer")  # (token, shopper): resolved once per request
    if cached is not None and cached[0] == token:
        return cached[1]
    shopper = customers.authenticate(current_key().merchant_id, token)
    g.api_customer = (token, shopper)
    return shopper


def optional_customer() -> customers.Shopper | None:
    """The signed-in shopper if the request carries `X-Customer-Token` (401 if it is bad)."""
    if CUSTOMER_TOKEN_HEADER not in request.headers:
        return None
    return current_customer()


def _signed_in(signed_in: customers.SignIn) -> dict[str, Any]:
    return ShopperSignIn.of(signed_in).body()


def _accepted(message: str) -> tuple[dict[str, Any], int]:
    return Accepted(message=message).body(), 202


def _reset_link_base() -> str | None:
    """Where the reset link points: the request's Origin if the key lists it, else the store's
    storefront URL. A key allowing every origin never sends a link to whoever asks."""
    key = current_key()
    origin = origins.parse_request_origin(request.headers.get("Origin"))
    if (
        origin is not None
        and key.allowed_origins
        and origins.origin_allowed(origin, key.allowed_origins)
    ):
        return origin
    return db.session.scalar(
        db.select(Merchant.storefront_url).where(Merchant.id == key.merchant_id)
    )


# -- shoppers -------------------------------------------------------------------------------


@bp.post("/customers")
@require_scope("customer:auth")
def register_customer() -> tuple[dict[str, Any], int]:
    """Register a shopper with `email`, `password` and `name`; signs them in."""
    _limit_ip()
    body = parse_body(RegisterBody)
    _limit_email("register", body.email)
    signed_in = customers.register(
        current_key().merchant_id, body.email, body.password, body.name, _client()
    )
    return _signed_in(signed_in), 201


@bp.post("/customers/sessions")
@require_scope("customer:auth")
def create_customer_session() -> tuple[dict[str, Any], int]:
    """Sign a shopper in with `email` and `password`, or `email` and a mailed `code`."""
    _limit_ip()
    body = parse_body(SessionBody)
    merchant_id = current_key().merchant_id
    blocked = limits.sign_in_blocked(merchant_id, body.email, request.remote_addr)
    if blocked is not None:
        raise _too_many(blocked)
    try:
        if body.code is not None:
            signed_in = customers.sign_in_with_code(merchant_id, body.email, body.code, _client())
        else:
            signed_in = customers.sign_in_with_password(
                merchant_id, body.email, body.password or "", _client()
            )
    except customers.InvalidCredentials:
        limits.sign_in_failed(merchant_id, body.email, request.remote_addr)
        raise
    return _signed_in(signed_in), 201


@bp.post("/customers/codes")
@require_scope("customer:auth")
def request_customer_code() -> tuple[dict[str, Any], int]:
    """Mail a 6-digit sign-in code (10 minutes, 5 tries) if the email has an account; 202."""
    _limit_ip()
    body = parse_body(EmailBody)
    _limit_email("mail", body.email)
    customers.request_code(current_key().merchant_id, body.email)
    return _accepted("If this email belongs to a customer of the store, a code is on its way.")


@bp.post("/customers/sessions/refresh")
@require_scope("customer:auth")
def refresh_customer_session() -> tuple[dict[str, Any], int]:
    """Spend `refresh_token` for a new pair; a spent one revokes its whole sign-in."""
    body = parse_body(RefreshBody)
    signed_in = customers.refresh(current_key().merchant_id, body.refresh_token, _client())
    return _signed_in(signed_in), 201


@bp.delete("/customers/sessions/current")
@require_scope("customer:auth")
def delete_current_customer_session() -> tuple[str, int]:
    """Sign out: the sign-in of `X-Customer-Token` ends on the next request."""
    customers.sign_out(current_customer())
    return "", 204


@bp.post("/customers/password-resets")
@require_scope("customer:auth")
def request_customer_password_reset() -> tuple[dict[str, Any], int]:
    """Mail a reset link to `<origin>/reset-password?token=…` if the email has an account; 202."""
    _limit_ip()
    body = parse_body(EmailBody)
    _limit_email("mail", body.email)
    customers.request_password_reset(current_key().merchant_id, body.email, _reset_link_base())
    return _accepted("If this email belongs to a customer of the store, a link is on its way.")


@bp.post("/customers/password-resets/confirm")
@require_scope("customer:auth")
def confirm_customer_password_reset() -> tuple[str, int]:
    """Set `password` with a reset `token` (once, within the hour); every sign-in ends."""
    _limit_ip()
    body = parse_body(ResetConfirmBody)
    customers.confirm_password_reset(current_key().merchant_id, body.token, body.password)
    return "", 204


@bp.get("/customers/me")
@require_scope("customer:auth")
def get_current_customer() -> dict[str, Any]:
    """The signed-in shopper."""
    shopper = current_customer()
    return CustomerProfile.of(shopper.customer, shopper.account).body()


@bp.patch("/customers/me")
@require_scope("customer:auth")
def update_current_customer() -> dict[str, Any]:
    """Change the signed-in shopper's `name`."""
    shopper = current_customer()
    body = parse_body(ProfileUpdate)
    shopper = customers.update_name(shopper, body.name)
    return CustomerProfile.of(shopper.customer, shopper.account).body()


@bp.get("/customers/me/orders")
@require_scope("customer:auth")
def list_current_customer_orders() -> dict[str, Any]:
    """The signed-in shopper's orders by id (in the key's market, for a market-scoped key)."""
    shopper = current_customer()
    params = page_params()
    page = customers.list_orders(
        shopper.customer.id, current_key().market_id, params.limit, params.starting_after
    )
    return list_response(OrderList, page, Order.of)


@bp.get(f"/customers/me/orders/<int(max={ID_MAX}):order_id>")
@require_scope("customer:auth")
def get_current_customer_order(order_id: int) -> dict[str, Any]:
    """One of the signed-in shopper's orders; anyone else's is 404."""
    shopper = current_customer()
    return Order.of(
        customers.get_order(shopper.customer.id, order_id, current_key().market_id)
    ).body()


# -- the back office ------------------------------------------------------------------------


def _admin_customer(detail: customers.CustomerDetail) -> dict[str, Any]:
    return AdminCustomer.of_detail(detail).body()


@bp.get(f"/admin/customers/<int(max={ID_MAX}):customer_id>")
@require_scope("customers:read")
def get_customer(customer_id: int) -> dict[str, Any]:
    """A customer with its order count and open sign-ins (never their tokens)."""
    key = current_key()
    return _admin_customer(customers.customer_detail(key.merchant_id, customer_id, key.market_id))


@bp.patch(f"/admin/customers/<int(max={ID_MAX}):customer_id>")
@require_scope("customers:write")
def update_customer(customer_id: int) -> dict[str, Any]:
    """Change a customer's `name` and/or `email`."""
    key = current_key()
    customers.get_customer(key.merchant_id, customer_id, key.market_id)
    body = parse_body(AdminCustomerUpdate)
    detail = customers.update_customer(key.merchant_id, customer_id, body.name, body.email)
    return _admin_customer(detail)


@bp.post(f"/admin/customers/<int(max={ID_MAX}):customer_id>/sign-out")
@require_scope("customers:write")
def sign_out_customer(customer_id: int) -> dict[str, Any]:
    """End every sign-in of a customer; each ends on its next request."""
    key = current_key()
    customers.get_customer(key.merchant_id, customer_id, key.market_id)
    ended = customers.sign_out_everywhere(key.merchant_id, customer_id)
    return CustomerSignOut(customer_id=customer_id, sessions_ended=ended).body()


@bp.errorhandler(customers.CustomerError)
def _customer_error(error: customers.CustomerError) -> Response:
    """A shopper error raised anywhere in a view becomes the API's JSON error."""
    status, code = ERRORS.get(type(error), (400, "invalid_request"))
    return error_response(status, code, error.message)
