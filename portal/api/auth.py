"""The gate: find the calling key, check its state, browser and network rules, limit and scope.

Every request under /api/v1 passes `gate()` before its view, in this order: CORS preflight,
key extraction, checksum (no database), one indexed lookup, key state, secret-key rules (no
`Origin`, allowed IP ranges), publishable-key origins, the key's rate limit, the market named by
`X-Site-ID`, and the scope the view requires. The happy path reads one row with a prepared Core
statement and makes one limiter-storage call (the client's failure limit and the key's own limit
together); it writes nothing. Keys are not cached: revoking or editing a key takes effect on the
next request in every process.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from sqlalchemy import and_, bindparam, event, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
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


# Lookup statements, built once: without X-Site-ID, with a market code, with a code or an id.
_LOOKUPS: dict[str, Any] = {}


def _build_lookup(site_kind: str) -> Any:
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
    if site_kind != "none":
        site_market = Market.__table__.alias("site_market")
        matches = site_market.c.code == bindparam("site_code")
        if site_kind == "code_or_id":
            matches = or_(matches, site_market.c.id == bindparam("site_id"))
        joined = joined.outerjoin(
            site_market, and_(site_market.c.merchant_id == keys.c.merchant_id, matches)
        )
        columns += [
            site_market.c.id.label("site_market_id"),
            site_market.c.code.label("site_market_code"),
        ]
    return select(*columns).select_from(joined).where(keys.c.key_hash == bindparam("key_hash"))


class PreparedLookup:
    """A lookup statement compiled once for a dialect: its SQL, its parameters, its row type."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.statement = statement
        self.sql = compiled.string
        self.parameter_order = list(compiled.positiontup or ()) if dialect.positional else None
        names = list(statement.selected_columns.keys())
        self.row_type = namedtuple("KeyRow", names)  # type: ignore[misc]  # noqa: PYI024
        # The column types' own converters (JSON text, SQLite datetimes), as SQLAlchemy runs them.
        self.converters = [
            (index, converter)
            for index, column in enumerate(statement.selected_columns)
            if (converter := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]

    def parameters(self, values: dict[str, Any]) -> Any:
        """The parameters in the driver's style."""
        if self.parameter_order is None:
            return values
        return tuple(values[name] for name in self.parameter_order)

    def rows(self, raw_rows: list[Any]) -> list[Any]:
        """Driver rows as named rows with SQLAlchemy's types."""
        rows = []
        for raw in raw_rows:
            values = list(raw)
            for index, converter in self.converters:
                values[index] = converter(values[index])
            rows.append(self.row_type(*values))
        return rows


class KeyLookup:
    """Each thread's own autocommit connection for the gate's one lookup.

    Each lookup is its own transaction, so it sees every committed revocation, edit and plan
    change at once, in every process: nothing about a key is cached. Holding the connection skips
    what a pooled ORM session costs per request (checkout with its pre-ping, BEGIN, ROLLBACK:
    three extra round trips on PostgreSQL), and the statement is compiled once and run on the
    driver's cursor. When something listens to the engine's statements (tracing, APM, the tests
    that count statements) the lookup runs through SQLAlchemy instead, so they see it. A failed
    connection is dropped; a lost one is replaced and the lookup tried again once.
    `engine.dispose()` closes them all.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        # A private SQLite memory database lives in one pooled connection: share it, never detach.
        database = engine.url.database or ""
        self.direct = engine.dialect.name == "postgresql" or (
            engine.dialect.name == "sqlite" and database not in ("", ":memory:")
        )
        self._prepared: dict[str, PreparedLookup] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []
        event.listen(engine, "engine_disposed", self._close_all)

    def _instrumented(self) -> bool:
        dispatch = self.engine.dispatch
        return not self.direct or bool(
            dispatch.before_cursor_execute or dispatch.after_cursor_execute
        )

    def _connection(self, instrumented: bool) -> Any:
        name = "connection" if instrumented else "dbapi_connection"
        connection = getattr(self._local, name, None)
        if connection is None:
            if instrumented:
                connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            else:
                # Out of the pool for good (closing it closes it), with the pool's connect hooks
                # (SQLite's WAL and busy timeout) applied.
                connection = self._detached_connection()
            with self._lock:
                self._open.append(connection)
            setattr(self._local, name, connection)
        return connection

    def _detached_connection(self) -> Any:
        """A driver connection taken out of the pool, in autocommit mode."""
        for _attempt in range(3):
            pooled = self.engine.raw_connection()
            connection = pooled.dbapi_connection
            if connection is None:
                # The pool handed back a record invalidated under it (seen with many threads):
                # throw it away and take another rather than fail the request.
                pooled.invalidate()
                continue
            pooled.detach()
            self.dialect.set_isolation_level(connection, "AUTOCOMMIT")
            return connection
        raise RuntimeError("The database pool gave no usable connection for the key lookup.")

    def _drop(self, connection: Any) -> None:
        for name in ("connection", "dbapi_connection"):
            if getattr(self._local, name, None) is connection:
                setattr(self._local, name, None)
        with self._lock:
            if connection in self._open:
                self._open.remove(connection)
        try:
            _close(connection)
        except Exception:  # already broken
            current_app.logger.debug("Closing a failed key-lookup connection failed", exc_info=True)

    def _close_all(self, _engine: Engine) -> None:
        with self._lock:
            connections, self._open = self._open, []
        self._local = threading.local()
        for connection in connections:
            # Best effort: a connection that is already broken has nothing left to release.
            with contextlib.suppress(Exception):
                _close(connection)

    def _prepare(self, site_kind: str, statement: Any) -> PreparedLookup:
        prepared = self._prepared.get(site_kind)
        if prepared is None:
            prepared = self._prepared[site_kind] = PreparedLookup(statement, self.dialect)
        return prepared

    def rows(self, site_kind: str, statement: Any, params: dict[str, Any]) -> list[Any]:
        """Run the lookup; retried once on a fresh connection if the old one was lost."""
        instrumented = self._instrumented()
        for attempt in (1, 2):
            connection = self._connection(instrumented)
            try:
                if instrumented:
                    return connection.execute(statement, params).all()
                prepared = self._prepare(site_kind, statement)
                cursor = connection.cursor()
                try:
                    cursor.execute(prepared.sql, prepared.parameters(params))
                    return prepared.rows(cursor.fetchall())
                finally:
                    cursor.close()
            except DBAPIError as error:  # SQLAlchemy's wrapper (instrumented path)
                self._drop(connection)
                if attempt == 2 or not error.connection_invalidated:
                    raise
            except self.dialect.loaded_dbapi.Error as error:  # the driver's own (direct path)
                self._drop(connection)
                lost = self.dialect.is_disconnect(error, connection, None)
                if attempt == 2 or not lost:
                    raise
            except Exception:
                self._drop(connection)
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def _close(connection: Any) -> None:
    """Really close a lookup connection: a SQLAlchemy one would go back to a (disposed) pool."""
    if isinstance(connection, Connection):
        connection.invalidate()
    connection.close()


def _key_lookup() -> KeyLookup:
    lookup = current_app.extensions.get("api_key_lookup")
    if lookup is None or lookup.engine is not db.engine:
        lookup = current_app.extensions["api_key_lookup"] = KeyLookup(db.engine)
    return lookup


def _lookup(key_hash: str, site: str | None) -> list[Any]:
    """The rows of the key with this hash (two when X-Site-ID matches a code and an id)."""
    params: dict[str, Any] = {"key_hash": key_hash}
    site_kind = "none"
    if site is not None:
        site_kind = "code"
        params["site_code"] = site.upper()
        if site.isdigit() and int(site) <= MAX_SITE_ID:
            site_kind = "code_or_id"
            params["site_id"] = int(site)
    statement = _LOOKUPS.get(site_kind)
    if statement is None:
        statement = _LOOKUPS[site_kind] = _build_lookup(site_kind)
    return _key_lookup().rows(site_kind, statement, params)


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
    row = _choose_row(_lookup(key_hash, site if site_valid else None), site)
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
            return ApiError(
                403, "ip_not_allowed", f"This key is not allowed from {request.remote_addr}."
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


def _too_many_failures(blocked: limits.RateWindow) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        "Too many failed authentications from this address; wait before retrying.",
        {"Retry-After": str(blocked.reset_in)},
    )


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
            # Blocked clients get a 429 whatever they send; others have the failure counted.
            blocked = limits.record_auth_failure()
            if blocked is not None:
                raise _too_many_failures(blocked) from None
        raise
    refusal, cors_origin = _browser_and_network(key)
    # One storage call: the client's failure limit, and the key's counter, consumed unless the
    # request is refused for its origin or network (then its headers show it untouched).
    check = limits.check_key(key.id, key.rate_limit, consume=refusal is None)
    if check.blocked is not None:
        raise _too_many_failures(check.blocked)
    # Set before the remaining checks, so hooks that count usage see refused requests too.
    g.api_key = key
    window = check.window
    assert window is not None
    limits.set_window(window)
    if refusal is not None:
        if refusal.code == "secret_key_in_browser":
            _record_secret_key_in_browser(key, request.headers["Origin"])
        raise refusal
    if cors_origin is not None:
        cors.allow_origin(cors_origin)
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
