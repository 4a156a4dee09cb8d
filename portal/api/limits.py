"""Per-key rate limits, and per-IP limits on failed authentication, in the limiter storage.

The counters live in the storage named by `RATELIMIT_STORAGE_URI`, so every process shares them.
Each API request costs one storage operation: with Redis, one script that checks the client's
failure counter and counts the key's request in a single round trip; with `memory://`, a dict
under a lock (no timer threads). Other storages Flask-Limiter supports go through `limits`.

When the shared storage fails (Redis down), the API keeps serving on per-process counters, logs a
warning, and tries the storage again after a back-off; when it answers again, limits are shared
again.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse

from portal.api.errors import is_api_path
from portal.extensions import limiter

DEFAULT_AUTH_FAILURE_LIMIT = "30/minute"
KEY_WINDOW_SECONDS = 60
MAX_RETRY_DELAY_SECONDS = 60
# A Redis that does not answer must not hold a request for long: the fallback takes over.
STORAGE_TIMEOUT_SECONDS = 0.5
EXTENSION_NAME = "api_rate_limits"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+unix://")


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


@dataclass(frozen=True, slots=True)
class Counter:
    """A fixed-window counter: its storage key, its limit, and its window in seconds."""

    key: str
    limit: int
    window: int

    def stands_at(self, count: int, reset_in_seconds: float) -> RateWindow:
        """The window after `count` requests, `reset_in_seconds` before it resets."""
        seconds = math.ceil(reset_in_seconds)
        reset_in = self.window if seconds <= 0 else min(seconds, self.window)
        return RateWindow(self.limit, max(0, self.limit - count), reset_in, count <= self.limit)


@dataclass(frozen=True, slots=True)
class Check:
    """The answer of one storage operation: the client is blocked, or where the counter stands."""

    blocked: RateWindow | None
    window: RateWindow | None


class Store(Protocol):
    """A place for counters; `check` is one storage operation."""

    def check(self, guard: Counter, counter: Counter, consume: bool) -> Check:
        """Blocked if `guard` is used up; else count one request on `counter` (or only read it)."""
        ...


class MemoryStore:
    """Counters in this process: a dict under a lock, swept of expired windows now and then."""

    SWEEP_EVERY_SECONDS = 30.0

    def __init__(self) -> None:
        self._counts: dict[str, list[float]] = {}  # key -> [count, expires at (monotonic)]
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + self.SWEEP_EVERY_SECONDS

    def _current(self, key: str, now: float) -> list[float] | None:
        entry = self._counts.get(key)
        if entry is not None and entry[1] <= now:
            del self._counts[key]
            return None
        return entry

    def check(self, guard: Counter, counter: Counter, consume: bool) -> Check:
        """See `Store.check`."""
        now = time.monotonic()
        with self._lock:
            if now >= self._next_sweep:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._next_sweep = now + self.SWEEP_EVERY_SECONDS
            used = self._current(guard.key, now)
            if used is not None and used[0] >= guard.limit:
                return Check(guard.stands_at(int(used[0]), used[1] - now), None)
            entry = self._current(counter.key, now)
            if consume:
                if entry is None:
                    entry = self._counts[counter.key] = [0, now + counter.window]
                entry[0] += 1
            if entry is None:
                return Check(None, counter.stands_at(0, counter.window))
            return Check(None, counter.stands_at(int(entry[0]), entry[1] - now))


# KEYS: the guard, the counter. ARGV: the guard's limit, the counter's window in ms, consume.
# With KEYS[1] == KEYS[2] it checks and counts a failure in the same call.
CHECK_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then
  return {-1, used, redis.call('PTTL', KEYS[1])}
end
local count
if ARGV[3] == '1' then
  count = redis.call('INCR', KEYS[2])
else
  count = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local ttl = redis.call('PTTL', KEYS[2])
if count > 0 and ttl < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {0, count, ttl}
"""


class RedisStore:
    """Counters in Redis, checked and counted by one script: one round trip per request."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client: Any = None
        self._script: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import redis

        if self._pid != os.getpid():  # a connection pool never crosses a fork
            with self._lock:
                if self._pid != os.getpid():
                    self._client = redis.Redis.from_url(
                        self.uri,
                        socket_timeout=STORAGE_TIMEOUT_SECONDS,
                        socket_connect_timeout=STORAGE_TIMEOUT_SECONDS,
                    )
                    self._script = self._client.register_script(CHECK_SCRIPT)
                    self._pid = os.getpid()
        return self._script

    def check(self, guard: Counter, counter: Counter, consume: bool) -> Check:
        """See `Store.check`."""
        script = self._connect()
        flag, count, ttl_ms = script(
            keys=[guard.key, counter.key],
            args=[guard.limit, counter.window * 1000, 1 if consume else 0],
        )
        if flag < 0:
            return Check(guard.stands_at(int(count), int(ttl_ms) / 1000), None)
        reset = int(ttl_ms) / 1000 if ttl_ms > 0 else counter.window
        return Check(None, counter.stands_at(int(count), reset))


class LimitsStore:
    """Any other storage Flask-Limiter was configured with, through `limits` (a few calls)."""

    def check(self, guard: Counter, counter: Counter, consume: bool) -> Check:
        """See `Store.check`."""
        storage = limiter.limiter.storage
        used = storage.get(guard.key)
        if used >= guard.limit:
            return Check(guard.stands_at(used, storage.get_expiry(guard.key) - time.time()), None)
        count = storage.incr(counter.key, counter.window) if consume else storage.get(counter.key)
        reset_at = storage.get_expiry(counter.key)
        return Check(None, counter.stands_at(count, reset_at - time.time()))


def store_for(uri: str) -> Store:
    """The store for a RATELIMIT_STORAGE_URI."""
    if uri.startswith("memory://"):
        return MemoryStore()
    if uri.startswith(REDIS_SCHEMES):
        return RedisStore(uri.replace("redis+unix://", "unix://", 1))
    return LimitsStore()


class Counters:
    """The configured storage, with a per-process fallback while it is unreachable."""

    def __init__(self, shared: Store, prefix: str, auth_failures: RateLimitItem) -> None:
        self.prefix = prefix
        self.failure_limit = auth_failures.amount
        self.failure_window = auth_failures.get_expiry()
        self._shared = shared
        self._fallback = MemoryStore()
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0

    @property
    def degraded(self) -> bool:
        """True while the shared storage is considered down."""
        return self._failures > 0

    def check(self, guard: Counter, counter: Counter, consume: bool) -> Check:
        """One operation on the shared storage, or on the fallback while it is down."""
        if time.monotonic() >= self._retry_at:
            try:
                result = self._shared.check(guard, counter, consume)
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
                    current_app.logger.warning("Rate limit storage recovered; limits are shared")
                return result
        return self._fallback.check(guard, counter, consume)


def _counters() -> Counters:
    return current_app.extensions[EXTENSION_NAME]


def _failure_counter(counters: Counters) -> Counter:
    client = request.remote_addr or "unknown"
    limit, window = counters.failure_limit, counters.failure_window
    return Counter(f"{counters.prefix}:api-auth-failures:{client}:{limit}/{window}", limit, window)


def check_key(key_id: int, rate_limit: int, consume: bool = True) -> Check:
    """One storage operation: the client IP's failure limit, then count (or read) the key's."""
    counters = _counters()
    # The limit is part of the name: editing a key's limit starts a fresh window.
    key = Counter(
        f"{counters.prefix}:api-key:{key_id}:{rate_limit}", rate_limit, KEY_WINDOW_SECONDS
    )
    return counters.check(_failure_counter(counters), key, consume)


def record_auth_failure() -> RateWindow | None:
    """The client IP's window if it has used up its failed authentications, else count this one."""
    counters = _counters()
    failures = _failure_counter(counters)
    return counters.check(failures, failures, consume=True).blocked


def set_window(window: RateWindow) -> None:
    """Report this counter in the response's RateLimit-* headers."""
    g.api_rate_window = window


def add_rate_limit_headers(response: Response) -> Response:
    """RateLimit-* on every response to a request whose key was identified."""
    window = g.get("api_rate_window")
    if window is not None and is_api_path():
        headers = response.headers
        for name, value in window.headers().items():
            headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Set up the counters' storage, its per-process fallback, and the header hook."""
    app.config.setdefault("API_AUTH_FAILURE_LIMIT", DEFAULT_AUTH_FAILURE_LIMIT)
    uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    app.extensions[EXTENSION_NAME] = Counters(
        store_for(uri),
        prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "portal",
        auth_failures=parse(app.config["API_AUTH_FAILURE_LIMIT"]),
    )
    app.after_request(add_rate_limit_headers)
