"""Per-merchant versions in Redis: what lets a process keep a key's row and still see changes.

Every committed ORM change to a merchant's keys, plan or markets sets the merchant's `keys`
version to a fresh random token; a change to its products or markets sets its `catalog` version.
The gate's one Redis script reads the version with the request's counter, and a process re-reads
a cached row only when the version moved, so a revocation, edit, rotation or plan change takes
effect on the very next request in every process and host. Tokens are random (never counters),
so a Redis that restarted empty cannot bring an old version back.

Only with a Redis limiter storage (RATELIMIT_STORAGE_URI=redis://...); without one nothing is
bumped and nothing is cached. Writes that bypass the ORM (Core UPDATEs) must call `note` in
the transaction, or `bump` after it.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

KEYS = "keys"
CATALOG = "catalog"
EXTENSION_NAME = "portal_versions"
PENDING = "portal_version_bumps"
# Which versions a change to a row of each table moves, and how to find its merchant.
TABLE_KINDS: dict[str, tuple[str, ...]] = {
    "api_keys": (KEYS,),
    "merchants": (KEYS, CATALOG),
    "markets": (KEYS, CATALOG),
    "products": (CATALOG,),
}
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+unix://")
TIMEOUT_SECONDS = 0.5


def key_name(prefix: str, kind: str, merchant_id: int) -> str:
    """The Redis key holding a merchant's version of `kind`."""
    return f"{prefix}:version:{kind}:{merchant_id}"


class Versions:
    """Sets versions in the limiter's Redis (its own small connection pool)."""

    def __init__(self, uri: str, prefix: str) -> None:
        self.uri = uri.replace("redis+unix://", "unix://", 1)
        self.prefix = prefix
        self._client: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _redis(self) -> Any:
        import redis

        if self._pid != os.getpid():  # a connection pool never crosses a fork
            with self._lock:
                if self._pid != os.getpid():
                    self._client = redis.Redis.from_url(
                        self.uri,
                        socket_timeout=TIMEOUT_SECONDS,
                        socket_connect_timeout=TIMEOUT_SECONDS,
                    )
                    self._pid = os.getpid()
        return self._client

    def bump(self, changes: set[tuple[str, int]]) -> None:
        """Give each (kind, merchant id) a fresh version, in one round trip."""
        if not changes:
            return
        pipeline = self._redis().pipeline(transaction=False)
        for kind, merchant_id in sorted(changes):
            pipeline.set(key_name(self.prefix, kind, merchant_id), secrets.token_hex(8))
        pipeline.execute()


def versions() -> Versions | None:
    """This app's versions, or None without a Redis storage."""
    return current_app.extensions.get(EXTENSION_NAME)


def bump(kind: str, merchant_id: int) -> None:
    """Move a merchant's version after a write the ORM did not see (call it after commit)."""
    store = versions()
    if store is not None:
        store.bump({(kind, merchant_id)})


def note(session: Session, kind: str, merchant_id: int) -> None:
    """Move a merchant's version when `session` commits: for a Core UPDATE or DELETE the ORM's
    flush does not see (e.g. stock reserved by a conditional UPDATE)."""
    session.info.setdefault(PENDING, set()).add((kind, merchant_id))


def _merchant_of(instance: Any, table: str) -> int | None:
    return getattr(instance, "id" if table == "merchants" else "merchant_id", None)


def _note_changes(session: Session, _context: Any) -> None:
    """After a flush: remember which merchants' versions the transaction moves."""
    pending: set[tuple[str, int]] = session.info.setdefault(PENDING, set())
    for instance in (*session.new, *session.dirty, *session.deleted):
        table = getattr(getattr(instance, "__table__", None), "name", None)
        kinds = TABLE_KINDS.get(table or "")
        if not kinds:
            continue
        merchant_id = _merchant_of(instance, table or "")
        if merchant_id is not None:
            pending.update((kind, merchant_id) for kind in kinds)


def _bump_committed(session: Session) -> None:
    """After commit: bump what the transaction changed; a failure is logged, never raised."""
    pending = session.info.pop(PENDING, None)
    if not pending or not has_app_context():
        return
    store = versions()
    if store is None:
        return
    try:
        store.bump(pending)
    except Exception as error:  # the commit stands; cached rows age out (KEY_CACHE_SECONDS)
        current_app.logger.error(
            "Could not bump versions %s (%s: %s); other processes may serve cached key rows "
            "for up to KEY_CACHE_SECONDS",
            sorted(pending),
            type(error).__name__,
            error,
        )


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(PENDING, None)


_listening = False


def init_app(app: Flask) -> None:
    """Bump versions after commits when the limiter storage is Redis."""
    global _listening
    uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if uri.startswith(REDIS_SCHEMES):
        prefix = app.config.get("RATELIMIT_KEY_PREFIX") or "portal"
        app.extensions[EXTENSION_NAME] = Versions(uri, prefix)
    if not _listening:  # global listeners, once per process; inert for apps without Redis
        event.listen(Session, "after_flush", _note_changes)
        event.listen(Session, "after_commit", _bump_committed)
        event.listen(Session, "after_rollback", _forget)
        _listening = True
