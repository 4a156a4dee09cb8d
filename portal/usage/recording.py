"""Count every API call made with a valid key, with no database write in the request."""

from __future__ import annotations

import functools
import logging
import os
import time

from flask import Flask, Response, current_app, g, request

from portal.database import utcnow
from portal.extensions import db
from portal.lean import append_headers
from portal.routing import rule_template
from portal.usage import rollup
from portal.usage.recorder import CallRecord, UsageRecorder

logger = logging.getLogger(__name__)
DENIAL_OUTCOMES = {
    "origin_not_allowed": "origin_denied",
    "secret_key_in_browser": "origin_denied",
    "insufficient_scope": "scope_denied",
    "ip_not_allowed": "ip_denied",
}


def outcome_of(status: int, error_code: str | None) -> str:
    """Sort a response into the outcomes merchants see."""
    if status == 429:
        return "rate_limited"
    if error_code in DENIAL_OUTCOMES:
        return DENIAL_OUTCOMES[error_code]
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


def route_name() -> str:
    """The matched route (e.g. /api/v1/carts/{cart_id}), never the raw path with its ids."""
    if request.url_rule is None:
        return "(no route)"
    return _route_template(request.url_rule.rule)


@functools.lru_cache(maxsize=1024)
def _route_template(rule: str) -> str:
    """A rule as the route merchants see; computed once per rule, not per request."""
    return rule_template(rule)[:120]


def recorder() -> UsageRecorder:
    """This app's usage recorder."""
    return current_app.extensions["usage_recorder"]


def _mark_start() -> None:
    """Note when the request started, for its latency."""
    g.request_started = time.perf_counter()


def _record_call(response: Response) -> Response:
    """Buffer one record for a request that carried a valid key (memory only, no I/O)."""
    request_globals = g._get_current_object()  # read several times: one lookup
    key = request_globals.get("api_key")
    if key is None:
        return response
    started = request_globals.get("request_started")
    latency_ms = (time.perf_counter() - started) * 1000 if started else 0.0
    # Every counted call has an id the merchant sees in Recent calls and the caller in a header.
    request_id = None
    for name, value in response.headers._list:  # noqa: SLF001 - one pass over the headers
        if name.lower() == "x-request-id":
            request_id = value
            break
    if request_id is None:
        request_id = f"req_{os.urandom(16).hex()}"
        append_headers(response, (("X-Request-Id", request_id),))
    error_code = request_globals.get("api_error_code")
    current = request._get_current_object()
    environ = current.environ
    recorder().record(
        CallRecord(
            api_key_id=key.id,
            merchant_id=key.merchant_id,
            at=utcnow(),
            method=current.method,
            route=route_name(),
            status=response.status_code,
            latency_ms=latency_ms,
            origin=environ.get("HTTP_ORIGIN"),
            outcome=outcome_of(response.status_code, error_code),
            error_code=error_code,
            client_ip=current.remote_addr,
            request_id=request_id,
        )
    )
    return response


def init_app(app: Flask) -> None:
    """Give the app a recorder whose flusher writes batches every USAGE_FLUSH_SECONDS."""

    def write(batch: list[CallRecord]) -> None:
        with app.app_context():
            try:
                rollup.write_batch(batch)
            except Exception:
                db.session.rollback()
                raise

    interval = float(app.config.get("USAGE_FLUSH_SECONDS", 2.0))
    app.extensions["usage_recorder"] = UsageRecorder(write, flush_interval=interval)
    app.before_request(_mark_start)
    app.after_request(_record_call)
