"""The gate: find the calling key, check its state, browser and network rules, limit and scope.

Every request under /api/v1 passes `gate()` before its view, in this order: CORS preflight,
key extraction, checksum (no database), one indexed lookup (`lookup.find_key_rows`), key state,
secret-key rules (no `Origin`, allowed IP ranges), publishable-key origins, the rate limit, the
market named by `X-Site-ID`, and the scope the view requires. Every request makes one
limiter-storage call, on the one counter that applies (see `limits`): a valid key's limit, the
refusals allowance of a refused origin or IP range, or the client's failed authentications. The
happy path reads at most one row and writes nothing.

With a Redis storage, rows are cached per process (`lookup.RowCache`) and the request's one Redis
script also reads the merchant's `keys` version (`portal.versions`, moved after every committed
change to its keys, plan or markets): a cached row is used only when that version is the one it
was read under; otherwise the gate runs again on a fresh row (counting the request once). So a
key already seen costs one round trip (Redis) and none to the database, and revoking or editing a
key takes effect on the next request in every process. On a SQLite file without Redis, rows are
kept per thread while `PRAGMA data_version` (one read per request) says no other connection
committed (`lookup.LocalCache`). Otherwise (PostgreSQL with memory://, or Redis down) nothing is
cached: the row is read every request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from flask import Flask, Response, current_app, g, request, url_for
from werkzeug.http import http_date

from portal import versions
from portal.accounts.models import PLAN_ACTIVE
from portal.api import bp, cors, limits, lookup
from portal.api.errors import ApiError, is_api_path
from portal.database import utcnow
from portal.keys import networks, origins, tokens
from portal.keys import service as keys_service
from portal.keys.scopes import SCOPES

View = TypeVar("View", bound=Callable[..., Any])

# The legacy `X-API-Key` header is deprecated since this date and stops working at the sunset.
LEGACY_DEPRECATED_AT = datetime(2026, 11, 1, tzinfo=UTC)
LEGACY_SUNSET_AT = datetime(2027, 11, 30, tzinfo=UTC)
SITE_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,16}")

# Endpoint ("api.<view name>") -> the scope it requires; the OpenAPI document reads it.
ROUTE_SCOPES: dict[str, str] = {}

MISSING_KEY_CHALLENGE = 'Bearer realm="api"'
INVALID_KEY_CHALLENGE = 'Bearer realm="api", error="invalid_token"'
HOW_TO_SEND = "send the key as Authorization: Bearer <key>."
# A scheme we can name in the message without echoing anything odd back.
SCHEME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9._~+/-]{0,19}")
# Failures of a key that exists: not guessing, so they never count toward the address's lock.
KNOWN_KEY_FAILURES = frozenset({"api_key_revoked", "api_key_expired"})
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


def _malformed_header(message: str) -> ApiError:
    return ApiError(401, "invalid_api_key", message, {"WWW-Authenticate": INVALID_KEY_CHALLENGE})


def _authorization_problem(scheme: str, credentials: str) -> str | None:
    """What is wrong with an Authorization header's form, or None when it is `Bearer <key>`."""
    if scheme.lower() == "bearer":
        return (
            None
            if credentials
            else f"The Authorization header has no key after Bearer; {HOW_TO_SEND}"
        )
    if not credentials:  # most likely the key itself: never echoed back
        return f"The Authorization header has no scheme; {HOW_TO_SEND}"
    if SCHEME_PATTERN.fullmatch(scheme):
        return f'The Authorization header uses the "{scheme}" scheme; {HOW_TO_SEND}'
    return f"The Authorization header is not in the expected form; {HOW_TO_SEND}"


def _extract_token() -> str | None:
    """The key from `Authorization: Bearer` or the legacy `X-API-Key`; ApiError if malformed."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        problem = _authorization_problem(scheme, credentials)
        if problem is not None:
            raise _malformed_header(problem)
        return credentials
    legacy = request.headers.get("X-API-Key")
    if legacy is not None:
        return legacy.strip()
    return None


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


class StaleRow(Exception):
    """The cached row's version is not the merchant's current one: read the row again."""

    def __init__(self, version: str | None) -> None:
        super().__init__("stale key row")
        self.version = version


def _key_rows(key_hash: str, site: str | None) -> list[Any]:
    """The key's rows: cached when the storage reads versions, else from the database."""
    g.api_row_cache = None
    if not limits.has_versions():
        local = g.api_local_cache = lookup.local_cache()  # SQLite: valid until a commit
        if local is None:
            return lookup.find_key_rows(key_hash, site)
        name = (key_hash, site)
        rows = local.rows.get(name)
        if rows is None:
            rows = lookup.find_key_rows(key_hash, site)
            if rows:
                local.put(local.rows, name, rows)
        return rows
    cache = lookup.row_cache()
    name = (key_hash, site)
    if "api_confirmed_version" not in g:
        cached = cache.get(name)
        if cached is not None:
            g.api_row_cache = (name, cached[1])
            return cached[0]
        confirmed = None  # first sight: the next request confirms it (one extra read)
    else:
        confirmed = g.api_confirmed_version  # read by this request's script, before this row
    rows = lookup.find_key_rows(key_hash, site)
    if rows:
        cache.put(name, rows, confirmed)
    return rows


def _version_keys(merchant_id: int) -> tuple[str, ...]:
    """The versions the request's Redis call must read: the merchant's `keys` version when the
    row came from the cache, and the versions the view caches by (`reads_versions`)."""
    wanted = g.get("api_view_versions") or ()
    if not wanted and g.get("api_row_cache") is None:
        return ()
    if not limits.has_versions():
        return ()
    names = [limits.version_key(kind, merchant_id) for kind in wanted]
    if g.get("api_row_cache") is not None:
        names.append(limits.version_key(versions.KEYS, merchant_id))
    return tuple(names)


def _confirm(window: limits.RateWindow) -> None:
    """Raise StaleRow unless a cached row's version is the one Redis just returned."""
    cached = g.get("api_row_cache")
    if cached is None:
        return
    version = cached[1]
    current = window.version(limits.version_key(versions.KEYS, g.api_row_merchant_id))
    if version is None or current != version:
        raise StaleRow(current)


def reads_versions(*kinds: str) -> Callable[[View], View]:
    """Declare the merchant versions (see portal.versions) a view caches by: with Redis, the
    gate's one storage call reads them, and `view_version(kind)` gives them to the view."""

    def decorate(view: View) -> View:
        view.reads_versions = kinds  # type: ignore[attr-defined]
        return view

    return decorate


def view_version(kind: str) -> str | None:
    """The merchant's version of `kind`, read with this request's counter; None without Redis
    (or while it is unreachable)."""
    window = g.get("api_rate_window")
    key = g.get("api_key")
    if window is None or key is None or window.versions is None:
        return None
    return window.version(limits.version_key(kind, key.merchant_id))


def _record_secret_key_in_browser(key: AuthenticatedKey, origin: str) -> None:
    """Audit the leak through the key service; the 403 matters more than its audit line."""
    try:
        keys_service.record_secret_key_in_browser(
            key.merchant_id, key.id, request.remote_addr, origin, request.path
        )
    except Exception:
        current_app.logger.exception("Could not record secret_key_in_browser for key %s", key.id)


def _authenticate() -> AuthenticatedKey:
    """Steps 2 to 4: the key from the headers, its checksum, its row, its state."""
    token = _extract_token()
    if token is None:
        raise _unauthorized("missing_api_key")
    if tokens.parse_token(token) is None:  # no database access for a mistyped or made-up key
        raise _unauthorized("invalid_api_key", "malformed_api_key")

    site = _site_header()
    site_valid = site is None or SITE_ID_PATTERN.fullmatch(site) is not None
    key_hash = tokens.hash_token(token, current_app.config["API_KEY_PEPPER"])
    row = _choose_row(_key_rows(key_hash, site if site_valid else None), site)
    g.api_row_merchant_id = None if row is None else row.merchant_id
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


def _browser_and_network(key: AuthenticatedKey) -> tuple[ApiError | None, str | None]:
    """Steps 5 and 6, without side effects: the refusal if any, and the origin CORS may allow.

    Secret keys not from browsers and within their IP ranges; publishable keys' origins.
    """
    origin_header = request.headers.get("Origin")
    if key.is_secret:
        if origin_header is not None:
            return ApiError(
                403,
                "secret_key_in_browser",
                "Secret keys are for servers, and this one arrived from a browser. Rotate it now "
                "and use a publishable key in browser code.",
            ), None
        if not networks.ip_allowed(request.remote_addr, key.allowed_ip_ranges):
            page = url_for("keys.show_key", key_id=key.id)
            return ApiError(
                403,
                "ip_not_allowed",
                f"This key is not allowed from {request.remote_addr}. To allow it, add the "
                f"address or its range to the key's allowed IP ranges on its page in the "
                f"portal: {page}",
            ), None
        return None, None
    if origin_header is None:
        return None, None  # servers and apps send no Origin
    origin = origins.parse_request_origin(origin_header)
    if not origins.origin_allowed(origin, key.allowed_origins):
        return ApiError(
            403,
            "origin_not_allowed",
            f"The origin {origin_header[:200]} is not in this key's allowed origins.",
        ), None
    return None, origin_header


def _rate_limited(message: str, window: limits.RateWindow) -> ApiError:
    return ApiError(429, "rate_limited", message, {"Retry-After": str(window.reset_in)})


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


def _refuse(key: AuthenticatedKey, refusal: ApiError) -> NoReturn:
    """Answer a request refused for its origin or IP range, within the (key, IP) allowance."""
    window = limits.count_refusal(key.id, key.rate_limit, _version_keys(key.merchant_id))
    _confirm(window)
    limits.set_window(window)
    if not window.allowed:
        # Past the allowance the key is not reported to the usage hooks: a flood of forged
        # requests cannot fill the merchant's usage and recent calls.
        raise _rate_limited(
            f"Too many refused requests for this key from this address; retry in "
            f"{window.reset_in} s.",
            window,
        )
    g.api_key = key
    if refusal.code == "secret_key_in_browser":
        _record_secret_key_in_browser(key, request.headers["Origin"])
    raise refusal


@bp.before_request
def gate() -> Response | None:
    """Authenticate and authorise the request before its view runs."""
    g.api_counted = {}
    g.pop("api_confirmed_version", None)
    try:
        return _gate()
    except StaleRow as stale:
        name, _version = g.api_row_cache
        lookup.row_cache().forget(name)
        g.api_confirmed_version = stale.version
        return _gate()


def _gate() -> Response | None:
    """The gate's steps; run again (counting nothing twice) when a cached row was stale."""
    current = request._get_current_object()  # read several times below: one lookup each
    environ = current.environ
    view = current_app.view_functions.get(current.endpoint or "")
    g._get_current_object().__dict__.update(
        api_key=None,
        api_row_cache=None,
        api_row_merchant_id=None,
        api_legacy_header="HTTP_AUTHORIZATION" not in environ and "HTTP_X_API_KEY" in environ,
        api_site_not_found=None,
        api_cors_origin=None,
        api_rate_window=None,
        api_local_cache=None,
        api_view_versions=getattr(view, "reads_versions", ()),
    )
    if current.method == "OPTIONS":
        return cors.preflight_response()
    if is_public(view):
        if request.headers.get("Origin"):
            cors.allow_origin(request.headers["Origin"])
        return None
    try:
        key = _authenticate()
    except ApiError as error:
        if error.status == 401 and error.code not in KNOWN_KEY_FAILURES:
            # Only failing requests are slowed: a valid key from this address is still served.
            merchant_id = g.api_row_merchant_id
            failures = limits.record_auth_failure(
                () if merchant_id is None else _version_keys(merchant_id)
            )
            _confirm(failures)  # an inactive plan read from the cache may be active again
            if not failures.allowed:
                raise _rate_limited(
                    "Too many failed authentications from this address; wait before retrying.",
                    failures,
                ) from None
        raise
    refusal, cors_origin = _browser_and_network(key)
    if refusal is not None:
        _refuse(key, refusal)
    window = limits.count_key_request(
        key.id, key.rate_limit, not key.is_secret, _version_keys(key.merchant_id)
    )
    _confirm(window)
    # Set before the remaining checks, so hooks that count usage see refused requests too.
    g.api_key = key
    limits.set_window(window)
    if cors_origin is not None:
        cors.allow_origin(cors_origin)  # before the 429: storefront code can read it
    if not window.allowed:
        each = "" if key.is_secret else " from each address"
        raise _rate_limited(
            f"This key allows {key.rate_limit} requests per minute{each}; "
            f"retry in {window.reset_in} s.",
            window,
        )
    site = g.get("api_site_not_found")
    if site is not None:
        raise ApiError(404, "not_found", f'No market "{site[:40]}" for this key.')
    _check_scope(key, required_scope_of(view))
    return None


def _deprecation_link() -> str:
    """Where the deprecation is explained: API_DOCS_URL, else the OpenAPI document we serve."""
    docs = current_app.config.get("API_DOCS_URL")
    if docs:
        return f'<{docs}>; rel="deprecation"; type="text/html"'
    return '</api/v1/openapi.json>; rel="deprecation"; type="application/openapi+json"'


def add_legacy_headers(response: Response) -> Response:
    """Tell callers of the legacy `X-API-Key` header that it is going away."""
    if g.get("api_legacy_header") and is_api_path():
        response.headers["Deprecation"] = f"@{int(LEGACY_DEPRECATED_AT.timestamp())}"
        response.headers["Sunset"] = http_date(LEGACY_SUNSET_AT)
        response.headers["Link"] = _deprecation_link()
    return response


def init_app(app: Flask) -> None:
    """Install the response hook for the legacy header's deprecation notice."""
    app.after_request(add_legacy_headers)
