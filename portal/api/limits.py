"""Rate limits in the limiter storage: per key, per refused caller, per failing address.

Counters (fixed one-minute windows unless said otherwise):
- a secret key's requests, per key: its limit is the key's alone;
- a publishable key's requests, per key and client IP: the key is public, so each shopper has the
  allowance and nobody holding the key can use up the storefront's;
- requests refused for their origin or IP range, per key and client IP, with the key's limit as
  allowance: refusals are throttled too, and cannot flood the key's usage;
- failed authentications (missing, malformed or unknown keys), per client IP: the only counter
  that slows guessing, and it never refuses a request that carries a valid key.

The counters live in the storage named by `RATELIMIT_STORAGE_URI`, so every process shares them.
Each API request costs one storage operation on one counter: with Redis, one script call; with
`memory://`, a dict under a lock (no timer threads). Other storages Flask-Limiter supports go
through `limits`.

When the shared storage fails (Redis down), the API keeps serving on per-process counters, logs a
warning, and tries the storage again after a back-off; when it answers again, limits are shared
again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse

from portal import versions
from portal.api.errors import is_api_path
from portal.extensions import limiter
from portal.lean import append_headers, header_names

DEFAULT_AUTH_FAILURE_LIMIT = "30/minute"
KEY_WINDOW_SECONDS = 60
MAX_RETRY_DELAY_SECONDS = 60
# A Redis that does not answer must not hold a request for long: the fallback takes over.
STORAGE_TIMEOUT_SECONDS = 0.5
EXTENSION_NAME = "api_rate_limits"
RATE_LIMIT_HEADER_NAMES = frozenset({"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"})
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+unix://")


@dataclass(frozen=True, slots=True)
class RateWindow:
    """Where one counter stands: its limit, what is left, and seconds until the window resets."""

    limit: int
    remaining: int
    reset_in: int
    allowed: bool = True
    # The merchant versions the same storage call read (see portal.versions), by their storage
    # key; None if not asked or unknown (memory:// or the per-process fallback).
    versions: dict[str, str] | None = None

    def version(self, name: str) -> str | None:
        """The version read under storage key `name`, or None."""
        return None if self.versions is None else self.versions.get(name)

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


class Store(Protocol):
    """A place for counters; `hit` is one storage operation."""

    def hit(
        self, counter: Counter, stop_at_limit: bool, version_keys: tuple[str, ...]
    ) -> RateWindow:
        """Count one request on `counter` and say where it stands.

        With `stop_at_limit`, a counter already at its limit is not counted further (the answer
        is a refusal), so a flood never lengthens or inflates it. With `version_keys`, the same
        operation reads those versions, if the storage can.
        """
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

    def hit(
        self, counter: Counter, stop_at_limit: bool, version_keys: tuple[str, ...] = ()
    ) -> RateWindow:
        """See `Store.hit` (no versions in memory)."""
        now = time.monotonic()
        with self._lock:
            if now >= self._next_sweep:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._next_sweep = now + self.SWEEP_EVERY_SECONDS
            entry = self._current(counter.key, now)
            if entry is None:
                entry = self._counts[counter.key] = [0, now + counter.window]
            if stop_at_limit and entry[0] >= counter.limit:
                return counter.stands_at(int(entry[0]) + 1, entry[1] - now)
            entry[0] += 1
            return counter.stands_at(int(entry[0]), entry[1] - now)


# KEYS: the counter, then any versions to read. ARGV: the window in ms, stop at the limit
# ('1' or '0'), the limit. Returns {count, ttl in ms, each version}. A version that is missing
# (never set, or Redis restarted empty or evicted it) is set here to one made of Redis's clock,
# never seen before, so a process cannot mistake it for a version it cached under.
HIT_SCRIPT = """
local answer = {0, 0}
local now = nil
for i = 2, #KEYS do
  local version = redis.call('GET', KEYS[i])
  if not version then
    if not now then now = redis.call('TIME') end
    version = 't' .. now[1] .. '.' .. now[2]
    redis.call('SET', KEYS[i], version)
  end
  answer[i + 1] = version
end
if ARGV[2] == '1' then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if used >= tonumber(ARGV[3]) then
    answer[1] = used + 1
    answer[2] = redis.call('PTTL', KEYS[1])
    return answer
  end
end
answer[1] = redis.call('INCR', KEYS[1])
answer[2] = redis.call('PTTL', KEYS[1])
if answer[2] < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  answer[2] = tonumber(ARGV[1])
end
return answer
"""


class ScriptError(Exception):
    """Redis answered the script call with an error (e.g. NOSCRIPT after a restart)."""


def _pack(*parts: bytes) -> bytes:
    """A command in RESP, as redis-py would send it."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _parse_reply(data: bytes) -> list[Any] | None:
    """The script's reply (an array of integers and bulk strings), or None if incomplete."""
    end = data.find(b"\r\n")
    if end < 0:
        return None
    kind, head = data[:1], data[1:end]
    if kind == b"-":
        raise ScriptError(head.decode(errors="replace"))
    if kind != b"*":
        raise ScriptError(f"unexpected reply {data[:40]!r}")
    items: list[Any] = []
    position = end + 2
    for _ in range(int(head)):
        end = data.find(b"\r\n", position)
        if end < 0:
            return None
        kind, head = data[position : position + 1], data[position + 1 : end]
        if kind == b":":
            items.append(int(head))
            position = end + 2
        elif kind == b"$":
            size = int(head)
            start = end + 2
            if len(data) < start + size + 2:
                return None
            items.append(data[start : start + size])
            position = start + size + 2
        else:
            raise ScriptError(f"unexpected reply item {data[position : position + 40]!r}")
    return items


class RedisStore:
    """Counters in Redis, counted by one script: one round trip per request.

    The script is sent as a prepacked EVALSHA on a connection each thread holds (redis-py made
    it: TLS, AUTH and SELECT as configured), and its small reply parsed here: redis-py's pool
    checkout, command packing and generic reply parsing cost about as much as the round trip
    itself. A NOSCRIPT answer (Redis restarted) loads the script through redis-py once; any
    other failure drops the connection and is raised to `Counters`, which falls back.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client: Any = None
        self._script: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        # What Redis names the script by (EVALSHA), not a security measure.
        self._sha = hashlib.sha1(HIT_SCRIPT.encode(), usedforsecurity=False).hexdigest().encode()

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
                    self._script = self._client.register_script(HIT_SCRIPT)
                    self._local = threading.local()
                    self._pid = os.getpid()
        return self._script

    def _connection(self) -> Any:
        self._connect()
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._client.connection_pool.make_connection()
            connection.connect()
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.disconnect()

    def _call(self, keys: list[str], args: list[int]) -> list[Any]:
        connection = self._connection()
        command = _pack(
            b"EVALSHA",
            self._sha,
            b"%d" % len(keys),
            *(key.encode() for key in keys),
            *(b"%d" % arg for arg in args),
        )
        try:
            connection.send_packed_command([command])
            sock = connection._sock
            data = sock.recv(4096)
            while True:
                if not data:
                    raise ConnectionError("Redis closed the connection")
                reply = _parse_reply(data)
                if reply is not None:
                    return reply
                data += sock.recv(4096)
        except ScriptError:
            raise  # the connection is still in step: the whole reply was read
        except BaseException:
            self._drop()  # a reply may still come: never reuse this connection
            raise

    def hit(
        self, counter: Counter, stop_at_limit: bool, version_keys: tuple[str, ...] = ()
    ) -> RateWindow:
        """See `Store.hit`."""
        keys = [counter.key, *version_keys]
        args = [counter.window * 1000, 1 if stop_at_limit else 0, counter.limit]
        try:
            count, ttl_ms, *versions = self._call(keys, args)
        except ScriptError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
            count, ttl_ms, *versions = self._script(keys=keys, args=args)  # loads it again
        reset = int(ttl_ms) / 1000 if ttl_ms > 0 else counter.window
        window = counter.stands_at(int(count), reset)
        if not version_keys:
            return window
        texts = (v.decode() if isinstance(v, bytes) else str(v) for v in versions)
        return dataclasses.replace(window, versions=dict(zip(version_keys, texts, strict=True)))


class LimitsStore:
    """Any other storage Flask-Limiter was configured with, through `limits` (a few calls)."""

    def hit(
        self, counter: Counter, stop_at_limit: bool, version_keys: tuple[str, ...] = ()
    ) -> RateWindow:
        """See `Store.hit` (no versions)."""
        storage = limiter.limiter.storage
        if stop_at_limit:
            used = storage.get(counter.key)
            if used >= counter.limit:
                reset_at = storage.get_expiry(counter.key)
                return counter.stands_at(used + 1, reset_at - time.time())
        count = storage.incr(counter.key, counter.window)
        return counter.stands_at(count, storage.get_expiry(counter.key) - time.time())


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

    @property
    def has_versions(self) -> bool:
        """Whether the shared storage reads versions with its counters (Redis)."""
        return isinstance(self._shared, RedisStore)

    def hit(
        self, counter: Counter, stop_at_limit: bool = False, version_keys: tuple[str, ...] = ()
    ) -> RateWindow:
        """One operation on the shared storage, or on the fallback while it is down.

        A request counts once per counter: asked again for the same counter (the gate re-runs
        after a stale cached row), the first answer is returned.
        """
        counted: dict[str, RateWindow] = g.setdefault("api_counted", {})
        done = counted.get(counter.key)
        if done is not None:
            return done
        counted[counter.key] = window = self._hit(counter, stop_at_limit, version_keys)
        return window

    def _hit(
        self, counter: Counter, stop_at_limit: bool, version_keys: tuple[str, ...]
    ) -> RateWindow:
        if time.monotonic() >= self._retry_at:
            try:
                result = self._shared.hit(counter, stop_at_limit, version_keys)
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
        return self._fallback.hit(counter, stop_at_limit, version_keys)


def _counters() -> Counters:
    return current_app.extensions[EXTENSION_NAME]


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _failure_counter(counters: Counters) -> Counter:
    limit, window = counters.failure_limit, counters.failure_window
    return Counter(
        f"{counters.prefix}:api-auth-failures:{_client_ip()}:{limit}/{window}", limit, window
    )


def has_versions() -> bool:
    """Whether counting also reads merchant versions (a Redis storage), so rows may be cached."""
    return _counters().has_versions


def version_key(kind: str, merchant_id: int) -> str:
    """The storage key of a merchant's version (see portal.versions)."""
    return versions.key_name(_counters().prefix, kind, merchant_id)


def count_key_request(
    key_id: int, rate_limit: int, per_client_ip: bool, version_keys: tuple[str, ...] = ()
) -> RateWindow:
    """Count a request on the key's limit: the key's alone, or each client IP's (public keys)."""
    counters = _counters()
    # The limit is part of the name: editing a key's limit starts a fresh window.
    name = f"{counters.prefix}:api-key:{key_id}:{rate_limit}"
    if per_client_ip:
        name = f"{name}:ip:{_client_ip()}"
    return counters.hit(Counter(name, rate_limit, KEY_WINDOW_SECONDS), version_keys=version_keys)


def count_refusal(key_id: int, rate_limit: int, version_keys: tuple[str, ...] = ()) -> RateWindow:
    """Count a request refused for its origin or IP range against the (key, client IP) allowance."""
    counters = _counters()
    name = f"{counters.prefix}:api-refused:{key_id}:{rate_limit}:{_client_ip()}"
    return counters.hit(
        Counter(name, rate_limit, KEY_WINDOW_SECONDS), stop_at_limit=True, version_keys=version_keys
    )


def record_auth_failure(version_keys: tuple[str, ...] = ()) -> RateWindow:
    """Count a failed authentication of the client IP; refused (`allowed` false) once used up."""
    counters = _counters()
    return counters.hit(_failure_counter(counters), stop_at_limit=True, version_keys=version_keys)


def set_window(window: RateWindow) -> None:
    """Report this counter in the response's RateLimit-* headers."""
    g.api_rate_window = window


def add_rate_limit_headers(response: Response) -> Response:
    """RateLimit-* on every response to a request whose key was identified."""
    window = g.get("api_rate_window")
    if window is not None and is_api_path():
        if header_names(response).isdisjoint(RATE_LIMIT_HEADER_NAMES):
            append_headers(response, window.headers().items())
        else:  # a view set its own: replace them
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
