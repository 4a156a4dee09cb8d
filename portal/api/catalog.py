"""Storefront catalog: published products (and markets) the key's market sells.

The product list is the storefront's hot read, so its answer (the JSON body and its ETag) is kept
per merchant, market and page, and served again until the merchant's catalog changes:
- with Redis, under the merchant's `catalog` version (`portal.versions`, moved after every
  committed product or market change), which the gate's one Redis call reads with the counter,
  so a change shows on the very next request in every process and host;
- on a SQLite file, in the thread's `lookup.LocalCache`, thrown away whenever
  `PRAGMA data_version` says another connection (any process) committed;
- otherwise (PostgreSQL with memory://, or Redis unreachable) it is built every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, jsonify, request
from werkzeug.http import generate_etag, http_date, quote_etag

from portal import versions
from portal.api import bp
from portal.api.auth import reads_versions, require_scope, view_version
from portal.api.pagination import list_response, page_params
from portal.api.schemas.products import Market, MarketList, Product, ProductList
from portal.api.tenancy import current_tenant
from portal.lean import append_headers
from portal.store import products
from portal.store.common import ID_MAX

CACHE_EXTENSION_NAME = "api_catalog_bodies"
DEFAULT_CACHE_ENTRIES = 10_000


class Answer:
    """A catalog answer ready to send again: the JSON body and its (strong) ETag."""

    __slots__ = ("body", "etag")

    def __init__(self, body: bytes, etag: str) -> None:
        self.body = body
        self.etag = etag


class VersionedBodies:
    """Answers this process built, each with the merchant's catalog version it was built under."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[str, Answer]] = {}
        self._lock = threading.Lock()

    def get(self, name: Any, version: str) -> Answer | None:
        """The answer built under `version`, if it is still the one kept."""
        entry = self._entries.get(name)
        if entry is None or entry[0] != version:
            return None
        return entry[1]

    def put(self, name: Any, version: str, answer: Answer) -> None:
        """Keep `answer`, built after `version` was read."""
        with self._lock:
            if len(self._entries) >= self.max_entries and name not in self._entries:
                for old in list(self._entries)[: max(1, self.max_entries // 10)]:
                    del self._entries[old]
            self._entries[name] = (version, answer)


def _versioned_bodies() -> VersionedBodies:
    bodies = current_app.extensions.get(CACHE_EXTENSION_NAME)
    if bodies is None:
        entries = int(current_app.config.get("CATALOG_CACHE_ENTRIES", DEFAULT_CACHE_ENTRIES))
        bodies = current_app.extensions[CACHE_EXTENSION_NAME] = VersionedBodies(entries)
    return bodies


def _etag(body: bytes) -> str:
    return generate_etag(body)


def cached_answer(name: tuple[Any, ...], build: Callable[[], dict[str, Any]]) -> Answer:
    """The answer kept under `name` (which must name the merchant and market) or a fresh one."""
    local = g.get("api_local_cache")
    if local is not None:  # SQLite: valid while no other connection committed
        answer = local.catalog.get(name)
        if answer is None:
            answer = _answer(build)
            local.put(local.catalog, name, answer)
        return answer
    version = view_version(versions.CATALOG)
    if version is None:  # nothing tells when it changes: build it every time
        return _answer(build)
    bodies = _versioned_bodies()
    answer = bodies.get(name, version)
    if answer is None:
        answer = _answer(build)
        bodies.put(name, version, answer)  # the version was read before the rows: safe
    return answer


def _answer(build: Callable[[], dict[str, Any]]) -> Answer:
    body = jsonify(build()).get_data()
    return Answer(body, _etag(body))


@bp.get("/catalog/products")
@require_scope("catalog:read")
@reads_versions(versions.CATALOG)
def list_catalog_products() -> Response:
    """Published products on sale in the key's market (every market without one), by id."""
    tenant = current_tenant()
    params = page_params()

    def build() -> dict[str, Any]:
        page = products.list_catalog(tenant, params.limit, params.starting_after)
        return list_response(ProductList, page, lambda product: Product.of(product, tenant))

    name = ("products", tenant.merchant_id, tenant.market_id, params.limit, params.starting_after)
    return answer_response(cached_answer(name, build))


@bp.get(f"/catalog/products/<int(max={ID_MAX}):product_id>")
@require_scope("catalog:read")
def get_catalog_product(product_id: int) -> Response:
    """One published product of the key's catalog."""
    tenant = current_tenant()
    return cacheable(Product.of(products.get_catalog_product(tenant, product_id), tenant).body())


DEFAULT_MAX_AGE_SECONDS = 30


def cacheable(body: dict[str, Any]) -> Response:
    """The body with an ETag and `Cache-Control: private, max-age`; 304 on If-None-Match."""
    response = jsonify(body)
    max_age = int(current_app.config.get("CATALOG_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))
    response.headers["Cache-Control"] = f"private, max-age={max_age}"
    # Each key (and market) sees its own catalog: a cache must keep them apart.
    response.vary.update(("Authorization", "X-API-Key", "X-Site-ID"))
    response.add_etag()
    return response.make_conditional(request)


VARY = "Authorization, X-API-Key, X-Site-ID"


# Request headers that can make an answer conditional (304, 412) or partial (206).
CONDITIONAL_HEADERS = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_RANGE",
)
_date: list[Any] = [0, ""]


def _http_date_now() -> str:
    """`Date` for this second, formatted once per second."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, http_date(now)]
    return _date[1]


def answer_response(answer: Answer) -> Response:
    """A kept answer as `cacheable` would send it (same headers), 304 on a matching ETag."""
    response = current_app.response_class(answer.body, mimetype="application/json")
    max_age = int(current_app.config.get("CATALOG_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))
    headers = [
        ("Cache-Control", f"private, max-age={max_age}"),
        ("Vary", VARY),
        ("ETag", quote_etag(answer.etag)),
    ]
    environ = request.environ
    if any(name in environ for name in CONDITIONAL_HEADERS):
        append_headers(response, headers)
        return response.make_conditional(request)
    headers.append(("Date", _http_date_now()))  # what make_conditional adds to a plain GET
    append_headers(response, headers)
    return response


@bp.get("/catalog/markets")
@require_scope("catalog:read")
def list_catalog_markets() -> dict[str, Any]:
    """The store's markets the key may sell in (only its own, for a market-scoped key), by id."""
    params = page_params()
    page = products.list_markets(current_tenant(), params.limit, params.starting_after)
    return list_response(MarketList, page, Market.of)
