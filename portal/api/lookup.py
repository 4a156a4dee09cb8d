"""The gate's one database read: the key by its hash, with its merchant's plan and markets.

`find_key_rows` runs a prepared Core statement on a connection each thread holds in autocommit
mode (see `KeyLookup`), so a request costs one round trip and no transaction bookkeeping.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import namedtuple
from typing import Any

from flask import current_app
from sqlalchemy import and_, bindparam, event, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from portal.accounts.models import Market, Merchant
from portal.extensions import db
from portal.keys.models import ApiKey

# X-Site-ID may name a market by id; larger numbers cannot be an id.
MAX_SITE_ID = 2**31 - 1
EXTENSION_NAME = "api_key_lookup"
CACHE_EXTENSION_NAME = "api_key_rows"
DEFAULT_CACHE_ENTRIES = 100_000
DEFAULT_CACHE_SECONDS = 60.0


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
    change at once, in every process (with Redis the gate caches rows in `RowCache`, and uses
    one only when the merchant's version confirms it). Holding the connection skips
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
        # SQLite files: `PRAGMA data_version` on the thread's connection says whether another
        # connection (this process's or another's) committed since, so rows can be kept per thread.
        self.stamps = engine.dialect.name == "sqlite" and self.direct
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

    def local_cache(self) -> LocalCache | None:
        """This thread's cache, emptied if the database changed since it was filled (SQLite).

        One `PRAGMA data_version` on the thread's lookup connection: it moves whenever another
        connection, in this process or any other (a second server, `flask revoke-key`), committed
        since the last time this connection asked. The lookup connection never writes, so every
        change to a key, a plan, a market or a product moves it. None off SQLite files.
        """
        if not self.stamps:
            return None
        instrumented = self._instrumented()
        for attempt in (1, 2):
            connection = self._connection(instrumented)
            try:
                if instrumented:
                    value = connection.exec_driver_sql(DATA_VERSION).scalar()
                else:
                    value = connection.execute(DATA_VERSION).fetchone()[0]
                break
            except Exception:
                self._drop(connection)
                if attempt == 2:
                    raise
        cache: LocalCache | None = getattr(self._local, "cache", None)
        stamp = (id(connection), value)
        if cache is None or cache.stamp != stamp:
            cache = self._local.cache = LocalCache(stamp)
        return cache

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


DATA_VERSION = "PRAGMA data_version"


class LocalCache:
    """What one thread keeps while the SQLite database does not change: key rows, catalog bodies.

    Thrown away whole when `PRAGMA data_version` moves (any commit by another connection: usage
    flushes included, so at most every USAGE_FLUSH_SECONDS under traffic), and when it holds more
    than `MAX_ENTRIES` entries of a kind.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, stamp: tuple[int, int]) -> None:
        self.stamp = stamp
        self.rows: dict[tuple[str, str | None], list[Any]] = {}
        self.catalog: dict[Any, Any] = {}

    def put(self, kind: dict[Any, Any], name: Any, value: Any) -> None:
        """Remember `value` under `name` in `kind` (self.rows or self.catalog)."""
        if len(kind) >= self.MAX_ENTRIES:
            kind.clear()
        kind[name] = value


def _close(connection: Any) -> None:
    """Really close a lookup connection: a SQLAlchemy one would go back to a (disposed) pool."""
    if isinstance(connection, Connection):
        connection.invalidate()
    connection.close()


def _key_lookup() -> KeyLookup:
    lookup = current_app.extensions.get(EXTENSION_NAME)
    if lookup is None or lookup.engine is not db.engine:
        lookup = current_app.extensions[EXTENSION_NAME] = KeyLookup(db.engine)
    return lookup


class RowCache:
    """Key rows this process has read, each with the merchant version it was read under.

    A row is used only after the request's one Redis call confirms its version (see the gate),
    so it is safe across processes and hosts; an entry also expires after `max_age` seconds, a
    backstop for a version bump that failed. Unknown keys are never cached.
    """

    def __init__(self, max_entries: int, max_age: float) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: dict[tuple[str, str | None], tuple[list[Any], str | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: tuple[str, str | None]) -> tuple[list[Any], str | None] | None:
        """(rows, version) if cached and not too old; version None means not yet confirmed."""
        entry = self._entries.get(name)
        if entry is None or entry[2] <= time.monotonic():
            return None
        return entry[0], entry[1]

    def put(self, name: tuple[str, str | None], rows: list[Any], version: str | None) -> None:
        """Remember rows read from the database after `version` was read (None: unknown)."""
        with self._lock:
            if len(self._entries) >= self.max_entries and name not in self._entries:
                # Drop the oldest tenth: cheap, and hot keys come straight back.
                for old in list(self._entries)[: max(1, self.max_entries // 10)]:
                    del self._entries[old]
            self._entries[name] = (rows, version, time.monotonic() + self.max_age)

    def forget(self, name: tuple[str, str | None]) -> None:
        """Drop one entry."""
        with self._lock:
            self._entries.pop(name, None)


def row_cache() -> RowCache:
    """This app's cache of key rows."""
    cache = current_app.extensions.get(CACHE_EXTENSION_NAME)
    if cache is None:
        config = current_app.config
        cache = current_app.extensions[CACHE_EXTENSION_NAME] = RowCache(
            int(config.get("KEY_CACHE_ENTRIES", DEFAULT_CACHE_ENTRIES)),
            float(config.get("KEY_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)),
        )
    return cache


def local_cache() -> LocalCache | None:
    """This thread's SQLite cache, valid for this request (None off SQLite files)."""
    return _key_lookup().local_cache()


def find_key_rows(key_hash: str, site: str | None) -> list[Any]:
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
