"""Counting failed attempts (wrong codes, wrong passwords) in the limiter's storage, which every
process and host shares: a counter kept in the session cookie could be reset by replaying an
older cookie."""

from __future__ import annotations

import math
import time

from flask import current_app
from limits import RateLimitItem, parse

from portal.extensions import limiter


def _item(setting: str) -> RateLimitItem:
    return parse(current_app.config[setting])


def _identifiers(bucket: str, *parts: object) -> tuple[str, ...]:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or "portal"
    return (prefix, bucket, *(str(part) for part in parts))


def fail(setting: str, bucket: str, *parts: object) -> None:
    """Count one failure against the limit named by the config `setting`."""
    try:
        limiter.limiter.hit(_item(setting), *_identifiers(bucket, *parts))
    except Exception as error:  # e.g. Redis unreachable: say so in the log, never answer 500
        current_app.logger.warning("Failed attempt not counted (%s)", type(error).__name__)


def used_up(setting: str, bucket: str, *parts: object) -> int | None:
    """Seconds until the counter resets, if its failures used up the limit; else None."""
    item = _item(setting)
    identifiers = _identifiers(bucket, *parts)
    try:
        if limiter.limiter.test(item, *identifiers):
            return None
        stats = limiter.limiter.get_window_stats(item, *identifiers)
    except Exception as error:
        current_app.logger.warning("Failed attempts not checked (%s)", type(error).__name__)
        return None
    return max(1, math.ceil(stats.reset_time - time.time()))
