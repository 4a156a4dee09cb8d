"""Per-key rate limits, and per-IP limits on failed authentication, on Flask-Limiter's storage.

The counters live in the storage Flask-Limiter was configured with (`RATELIMIT_STORAGE_URI`), so
every process shares them. When that storage fails (Redis down), the API keeps serving on
per-process in-memory counters, logs a warning, and tries the storage again after a back-off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter, RateLimiter

from portal.api.errors import is_api_path
from portal.extensions import limiter

DEFAULT_AUTH_FAILURE_LIMIT = "30/minute"
MAX_RETRY_DELAY_SECONDS = 60
EXTENSION_NAME = "api_rate_limits"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RateWindow:
    """Where one counter stands: its limit, what is left, and seconds until the window resets."""

    limit: int
    remaining: int
    reset_in: int
    allowed: bool = True

    def headers(self) -> dict[str, str]:
        """The RateLimit-* headers (reset in seconds, not an epoch)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_in),
        }


class Counters:
    """The configured limiter storage, with a per-process fallback while it is unreachable."""

    def __init__(self, strategy: str) -> None:
        self._fallback: RateLimiter = STRATEGIES[strategy](MemoryStorage())
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0

    @property
    def degraded(self) -> bool:
        """True while the shared storage is considered down."""
        return self._failures > 0

    def run(self, operation: Callable[[RateLimiter], T]) -> T:
        """Run `operation` on the shared storage, or on the fallback while it is down."""
        if time.monotonic() >= self._retry_at:
            try:
                result = operation(limiter.limiter)
            except Exception as error:  # any storage failure: never turn it into a 500
                with self._lock:
                    self._failures += 1
                    delay = min(MAX_RETRY_DELAY_SECONDS, 2**self._failures)
                    self._retry_at = time.monotonic() + delay
                current_app.logger.warning(
                    "Rate limit storage unreachable (%s: %s); using per-process limits, "
                    "retrying in %s s",
                    type(error).__name__,
                    error,
                    delay,
                )
            else:
                if self._failures:
                    with self._lock:
                        self._failures = 0
                    current_app.logger.info("Rate limit storage recovered")
                return result
        return operation(self._fallback)


def _counters() -> Counters:
    return current_app.extensions[EXTENSION_NAME]


def _ids(*parts: str) -> tuple[str, ...]:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or "portal"
    return (prefix, *parts)


def _reset_in(reset_at: float, item: RateLimitItem) -> int:
    """Whole seconds until the window resets, between 1 and the window's length."""
    window = item.get_expiry()
    seconds = math.ceil(reset_at - time.time())
    return window if seconds <= 0 else min(seconds, window)


def _hit(item: RateLimitItem, ids: tuple[str, ...]) -> Callable[[RateLimiter], RateWindow]:
    def operation(strategy: RateLimiter) -> RateWindow:
        if not isinstance(strategy, FixedWindowRateLimiter):
            allowed = strategy.hit(item, *ids)
            reset_at, remaining = strategy.get_window_stats(item, *ids)
            return RateWindow(item.amount, remaining, _reset_in(reset_at, item), allowed)
        # Two storage calls instead of the four of hit() + get_window_stats().
        key = item.key_for(*ids)
        count = strategy.storage.incr(key, item.get_expiry())
        reset_at = strategy.storage.get_expiry(key)
        return RateWindow(
            limit=item.amount,
            remaining=max(0, item.amount - count),
            reset_in=_reset_in(reset_at, item),
            allowed=count <= item.amount,
        )

    return operation


def _peek(item: RateLimitItem, ids: tuple[str, ...]) -> Callable[[RateLimiter], RateWindow]:
    def operation(strategy: RateLimiter) -> RateWindow:
        reset_at, remaining = strategy.get_window_stats(item, *ids)
        return RateWindow(item.amount, remaining, _reset_in(reset_at, item), remaining > 0)

    return operation


def hit_key(key_id: int, rate_limit: int) -> RateWindow:
    """Count one request against the key's own per-minute limit."""
    item = RateLimitItemPerMinute(rate_limit)
    return _counters().run(_hit(item, _ids("api-key", str(key_id))))


def peek_key(key_id: int, rate_limit: int) -> RateWindow | None:
    """Where the key's counter stands, without counting this request (None if unknown)."""
    item = RateLimitItemPerMinute(rate_limit)
    try:
        return _counters().run(_peek(item, _ids("api-key", str(key_id))))
    except Exception:  # headers on a refusal are a courtesy; never fail for them
        return None


def _auth_failure_item() -> RateLimitItem:
    return current_app.extensions[EXTENSION_NAME + ".auth_failures"]


def _client_ids() -> tuple[str, ...]:
    return _ids("api-auth-failures", request.remote_addr or "unknown")


def auth_failures_exhausted() -> RateWindow | None:
    """The client IP's failure window when it has used up its failed authentications, else None."""
    item, ids = _auth_failure_item(), _client_ids()
    if _counters().run(lambda strategy: strategy.test(item, *ids)):
        return None
    return _counters().run(_peek(item, ids))


def record_auth_failure() -> None:
    """Count a failed authentication against the client IP."""
    _counters().run(_hit(_auth_failure_item(), _client_ids()))


def set_window(window: RateWindow) -> None:
    """Report this counter in the response's RateLimit-* headers."""
    g.api_rate_window = window


def add_rate_limit_headers(response: Response) -> Response:
    """RateLimit-* on every response to a request whose key was identified."""
    window = g.get("api_rate_window")
    if window is not None and is_api_path():
        response.headers.update(window.headers())
    return response


def init_app(app: Flask) -> None:
    """Set up the per-process fallback counters and the header hook."""
    app.config.setdefault("API_AUTH_FAILURE_LIMIT", DEFAULT_AUTH_FAILURE_LIMIT)
    app.extensions[EXTENSION_NAME + ".auth_failures"] = parse(app.config["API_AUTH_FAILURE_LIMIT"])
    strategy = app.config.get("RATELIMIT_STRATEGY") or "fixed-window"
    app.extensions[EXTENSION_NAME] = Counters(strategy)
    app.after_request(add_rate_limit_headers)
