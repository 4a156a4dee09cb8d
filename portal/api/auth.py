"""The gate: find the calling key, check its state, browser and network rules, limit and scope.

Every request under /api/v1 passes `gate()` before its view, in this order: CORS preflight,
key extraction, checksum (no database), one indexed lookup, key state, secret-key rules (no
`Origin`, allowed IP ranges), publishable-key origins, the key's rate limit, the market named by
`X-Site-ID`, and the scope the view requires. The happy path reads one row and writes nothing.
Keys are not cached: revoking or editing a key takes effect on the next request in every process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from sqlalchemy import and_, or_, select
from werkzeug.http import http_date

from portal.accounts.models import PLAN_ACTIVE, Market, Merchant
from portal.api import bp, cors, limits
from portal.api.errors import ApiError, is_api_path
from portal.database import utcnow
from portal.extensions import db
from portal.keys import networks, origins, tokens
from portal.keys.models import ApiKey, AuditEvent
from portal.keys.scopes import SCOPES

View = TypeVar("View", bound=Callable[..., Any])

# The legacy `X-API-Key` header is deprecated since this date and stops working at the sunset.
LEGACY_DEPRECATED_AT = datetime(2026, 11, 1, tzinfo=UTC)
LEGACY_SUNSET_AT = datetime(2027, 11, 30, tzinfo=UTC)
DEFAULT_DOCS_URL = "/docs/api"
BROWSER_EVENT_INTERVAL = timedelta(hours=1)
SITE_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,16}")
MAX_SITE_ID = 2**31 - 1

# Endpoint ("api.<view name>") -> the scope it requires; the OpenAPI document reads it.
ROUTE_SCOPES: dict[str, str] = {}

MISSING_KEY_CHALLENGE = 'Bearer realm="api"'
INVALID_KEY_CHALLENGE = 'Bearer realm="api", error="invalid_token"'
MESSAGES = {
    "missing_api_key": "No API key. Send it as Authorization: Bearer <key>.",
    "malformed_api_key": "The API key is malformed or mistyped; copy it again from the portal.",
    "invalid_api_key": "The API key is not valid.",
    "api_key_revoked": "This API key was revoked; use its replacement or create a new key.",
    "api_key_expired": "This API key has expired; create a new key in the portal.",
}


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    """The key of the current request, as read from the database at the start of the request."""

    id: int
    merchant_id: int
    key_type: str
    mode: str
    scopes: frozenset[str]
    # The effective market: the key's own, or the one X-Site-ID narrowed a tenant-level key to.
    market_id: int | None
    key_market_id: int | None
    rate_limit: int
    expires_at: datetime | None
    allowed_origins: tuple[str, ...]
    allowed_ip_ranges: tuple[str, ...]
    legacy_header: bool
    market_code: str | None = None
    key_market_code: str | None = None

    @property
    def is_secret(self) -> bool:
        """Whether this is a secret (server-only) key."""
        return self.key_type == "secret"

    def has_scope(self, scope: str) -> bool:
        """Whether the key holds `scope` and its type may hold it."""
        definition = SCOPES.get(scope)
        return (
            definition is not None
            and scope in self.scopes
            and self.key_type in definition.key_types
        )


def current_key() -> AuthenticatedKey:
    """The authenticated key of this API request."""
    key = g.get("api_key")
    if key is None:
        raise RuntimeError("current_key() needs an authenticated API request.")
    return key


def require_scope(scope: str) -> Callable[[View], View]:
    """Declare the scope a view needs; the gate enforces it before the view runs."""
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}; the registry has {', '.join(SCOPES)}.")

    def decorate(view: View) -> View:
        view.required_scope = scope  # type: ignore[attr-defined]
        ROUTE_SCOPES[f"{bp.name}.{view.__name__}"] = scope
        return view

    return decorate


def public(view: View) -> View:
    """Mark a view that answers without a key (e.g. the OpenAPI document)."""
    view.api_public = True  # type: ignore[attr-defined]
    return view


def required_scope_of(view: Callable[..., Any] | None) -> str | None:
    """The scope a view declared with `require_scope`, if any."""
    return getattr(view, "required_scope", None)


def is_public(view: Callable[..., Any] | None) -> bool:
    """Whether a view was marked with `public`."""
    return bool(getattr(view, "api_public", False))


def _unauthorized(code: str, message_key: str | None = None) -> ApiError:
    header = MISSING_KEY_CHALLENGE if code == "missing_api_key" else INVALID_KEY_CHALLENGE
    return ApiError(401, code, MESSAGES[message_key or code], {"WWW-Authenticate": header})


def _extract_token() -> str | None:
    """The key from `Authorization: Bearer` or the legacy `X-API-Key`; ApiError if malformed."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthorized("invalid_api_key", "malformed_api_key")
        return credentials.strip()
    legacy = request.headers.get("X-API-Key")
    if legacy is not None:
        return legacy.strip()
    return None


def _lookup_statement(key_hash: str, site: str | None) -> Any:
    """One indexed lookup by hash, with the merchant's plan and the markets the request names."""
    keys = ApiKey.__table__
    merchants = Merchant.__table__
    key_market = Market.__table__.alias("key_market")
    columns = [
        keys.c.id,
        keys.c.merchant_id,
        keys.c.key_type,
        keys.c.mode,
        keys.c.scopes,
        keys.c.market_id,
        keys.c.rate_limit,
        keys.c.expires_at,
        keys.c.revoked_at,
        keys.c.allowed_origins,
        keys.c.allowed_ip_ranges,
        merchants.c.plan,
        key_market.c.code.label("key_market_code"),
    ]
    joined = keys.join(merchants, merchants.c.id == keys.c.merchant_id).outerjoin(
        key_market, key_market.c.id == keys.c.market_id
    )
    if site is not None:
        site_market = Market.__table__.alias("site_market")
        matches = site_market.c.code == site.upper()
        if site.isdigit() and int(site) <= MAX_SITE_ID:
            matches = or_(matches, site_market.c.id == int(site))
        joined = joined.outerjoin(
            site_market, and_(site_market.c.merchant_id == keys.c.merchant_id, matches)
        )
        columns += [
            site_market.c.id.label("site_market_id"),
            site_market.c.code.label("site_market_code"),
        ]
    return select(*columns).select_from(joined).where(keys.c.key_hash == key_hash)


def _site_header() -> str | None:
    site = (request.headers.get("X-Site-ID") or "").strip()
    return site or None


def _choose_row(rows: list[Any], site: str | None) -> Any | None:
    """The key's row; with two site matches (a code and an id), the code wins."""
    if not rows:
        return None
    if site is not None and len(rows) > 1:
        for row in rows:
            if row.site_market_code == site.upper():
                return row
    return rows[0]


def _record_secret_key_in_browser(key: AuthenticatedKey, origin: str) -> None:
    """Log on the key that it arrived from a browser, at most once an hour per key."""
    now = utcnow()
    try:
        recent = db.session.scalar(
            select(AuditEvent.id)
            .where(
                AuditEvent.api_key_id == key.id,
                AuditEvent.action == "secret_key_in_browser",
                AuditEvent.created_at > now - BROWSER_EVENT_INTERVAL,
            )
            .limit(1)
        )
        if recent is None:
            db.session.add(
                AuditEvent(
                    merchant_id=key.merchant_id,
                    api_key_id=key.id,
                    action="secret_key_in_browser",
                    actor="api",
                    ip=(request.remote_addr or "")[:45] or None,
                    created_at=now,
                    details={"origin": origin[:200], "path": request.path[:200]},
                )
            )
            db.session.commit()
    except Exception:  # the 403 matters more than its audit line
        db.session.rollback()
        current_app.logger.exception("Could not record secret_key_in_browser for key %s", key.id)


def _refuse_after_auth(key: AuthenticatedKey, status: int, code: str, message: str) -> ApiError:
    """A refusal of an identified key; it shows the key's counter without consuming it."""
    window = limits.peek_key(key.id, key.rate_limit)
    if window is not None:
        limits.set_window(window)
    return ApiError(status, code, message)


def _authenticate() -> AuthenticatedKey:
    """Steps 2 to 4: the key from the headers, its checksum, its row, its state."""
    blocked = limits.auth_failures_exhausted()
    if blocked is not None:
        raise ApiError(
            429,
            "rate_limited",
            "Too many failed authentications from this address; wait before retrying.",
            {"Retry-After": str(blocked.reset_in)},
        )
    token = _extract_token()
    if token is None:
        raise _unauthorized("missing_api_key")
    if tokens.parse_token(token) is None:  # no database access for a mistyped or made-up key
        raise _unauthorized("invalid_api_key", "malformed_api_key")

    site = _site_header()
    site_valid = site is None or SITE_ID_PATTERN.fullmatch(site) is not None
    key_hash = tokens.hash_token(token, current_app.config["API_KEY_PEPPER"])
    rows = list(db.session.execute(_lookup_statement(key_hash, site if site_valid else None)))
    row = _choose_row(rows, site)
    if row is None or row.plan != PLAN_ACTIVE:
        raise _unauthorized("invalid_api_key")  # an inactive plan looks exactly like no key
    now = utcnow()
    if row.revoked_at is not None and row.revoked_at <= now:
        raise _unauthorized("api_key_revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise _unauthorized("api_key_expired")

    market_id, market_code = row.market_id, row.key_market_code
    if site is not None:
        site_market_id = getattr(row, "site_market_id", None) if site_valid else None
        if site_market_id is None or (market_id is not None and site_market_id != market_id):
            g.api_site_not_found = site
        else:
            market_id, market_code = site_market_id, row.site_market_code
    return AuthenticatedKey(
        id=row.id,
        merchant_id=row.merchant_id,
        key_type=row.key_type,
        mode=row.mode,
        scopes=frozenset(row.scopes or ()),
        market_id=market_id,
        key_market_id=row.market_id,
        rate_limit=row.rate_limit,
        expires_at=row.expires_at,
        allowed_origins=tuple(row.allowed_origins or ()),
        allowed_ip_ranges=tuple(row.allowed_ip_ranges or ()),
        legacy_header=bool(g.get("api_legacy_header")),
        market_code=market_code,
        key_market_code=row.key_market_code,
    )


def _check_browser_and_network(key: AuthenticatedKey) -> None:
    """Steps 5 and 6: secret keys not from browsers, within IP ranges; publishable keys' origins."""
    origin_header = request.headers.get("Origin")
    if key.is_secret:
        if origin_header is not None:
            _record_secret_key_in_browser(key, origin_header)
            raise _refuse_after_auth(
                key,
                403,
                "secret_key_in_browser",
                "Secret keys are for servers, and this one arrived from a browser. Rotate it now "
                "and use a publishable key in browser code.",
            )
        if not networks.ip_allowed(request.remote_addr, key.allowed_ip_ranges):
            raise _refuse_after_auth(
                key,
                403,
                "ip_not_allowed",
                f"This key is not allowed from {request.remote_addr}.",
            )
        return
    if origin_header is None:
        return  # servers and apps send no Origin
    origin = origins.parse_request_origin(origin_header)
    if not origins.origin_allowed(origin, key.allowed_origins):
        raise _refuse_after_auth(
            key,
            403,
            "origin_not_allowed",
            f"The origin {origin_header[:200]} is not in this key's allowed origins.",
        )
    cors.allow_origin(origin_header)


def _check_scope(key: AuthenticatedKey, scope: str | None) -> None:
    """Step 8: the scope the view requires."""
    if scope is None or key.has_scope(scope):
        return
    if SCOPES[scope].secret_only and not key.is_secret:
        message = f'This endpoint needs a secret key with the "{scope}" scope.'
    else:
        message = f'This key lacks the "{scope}" scope this endpoint needs.'
    raise ApiError(
        403,
        "insufficient_scope",
        message,
        {"WWW-Authenticate": f'Bearer realm="api", error="insufficient_scope", scope="{scope}"'},
    )


@bp.before_request
def gate() -> Response | None:
    """Authenticate and authorise the request before its view runs."""
    g.api_key = None
    g.api_legacy_header = "Authorization" not in request.headers and "X-API-Key" in request.headers
    g.api_site_not_found = None
    g.api_cors_origin = None
    g.api_rate_window = None
    if request.method == "OPTIONS":
        return cors.preflight_response()
    view = current_app.view_functions.get(request.endpoint or "")
    if is_public(view):
        if request.headers.get("Origin"):
            cors.allow_origin(request.headers["Origin"])
        return None
    try:
        key = _authenticate()
    except ApiError as error:
        if error.status == 401:
            limits.record_auth_failure()
        raise
    # Set before the remaining checks, so hooks that count usage see refused requests too.
    g.api_key = key
    _check_browser_and_network(key)

    window = limits.hit_key(key.id, key.rate_limit)
    limits.set_window(window)
    if not window.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"This key allows {key.rate_limit} requests per minute; retry in {window.reset_in} s.",
            {"Retry-After": str(window.reset_in)},
        )
    site = g.get("api_site_not_found")
    if site is not None:
        raise ApiError(404, "not_found", f'No market "{site[:40]}" for this key.')
    _check_scope(key, required_scope_of(view))
    return None


def add_legacy_headers(response: Response) -> Response:
    """Tell callers of the legacy `X-API-Key` header that it is going away."""
    if g.get("api_legacy_header") and is_api_path():
        docs = current_app.config.get("API_DOCS_URL") or DEFAULT_DOCS_URL
        response.headers["Deprecation"] = f"@{int(LEGACY_DEPRECATED_AT.timestamp())}"
        response.headers["Sunset"] = http_date(LEGACY_SUNSET_AT)
        response.headers["Link"] = f'<{docs}#authentication>; rel="deprecation"; type="text/html"'
    return response


def init_app(app: Flask) -> None:
    """Install the response hook for the legacy header's deprecation notice."""
    app.after_request(add_legacy_headers)
