"""Abuse limits of the shopper endpoints, in the limiter storage every process shares.

Registering, signing in, asking for codes and resetting passwords are limited per client IP;
requests that mail someone or create an account also per email. Failed sign-ins count per
(email, client IP), so one address guessing a password never locks the shopper out for others,
and per email with a higher allowance, against guessing from many addresses. Unknown emails are
counted exactly like known ones, so a limit says nothing about whether an email exists.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItem, parse

from portal.extensions import limiter

DEFAULTS = {
    "CUSTOMER_LIMIT_PER_IP": "30/minute",
    "CUSTOMER_LIMIT_PER_EMAIL": "5 per 10 minutes",
    "CUSTOMER_FAILURES_PER_EMAIL_AND_IP": "5/minute",
    "CUSTOMER_FAILURES_PER_EMAIL": "20/minute",
}


@dataclass(frozen=True)
class Exceeded:
    """A limit was reached: which one, and seconds until it resets."""

    limit: str
    retry_after: int


def _item(setting: str) -> RateLimitItem:
    return parse(current_app.config.get(setting, DEFAULTS[setting]))


def _identifiers(bucket: str, *parts: object) -> tuple[str, ...]:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or "portal"
    return (prefix, f"customer-{bucket}", *(str(part) for part in parts))


def _retry_after(item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
    stats = limiter.limiter.get_window_stats(item, *identifiers)
    return max(1, math.ceil(stats.reset_time - time.time()))


def _hit(setting: str, bucket: str, *parts: object) -> Exceeded | None:
    """Count one request; Exceeded if it is over the limit. A storage failure never refuses."""
    item = _item(setting)
    identifiers = _identifiers(bucket, *parts)
    try:
        if limiter.limiter.hit(item, *identifiers):
            return None
        return Exceeded(setting, _retry_after(item, identifiers))
    except Exception as error:  # e.g. Redis unreachable: serve, and say so in the log
        current_app.logger.warning("Shopper limit not checked (%s)", type(error).__name__)
        return None


def _test(setting: str, bucket: str, *parts: object) -> Exceeded | None:
    """Whether a counter is used up, without counting."""
    item = _item(setting)
    identifiers = _identifiers(bucket, *parts)
    try:
        if limiter.limiter.test(item, *identifiers):
            return None
        return Exceeded(setting, _retry_after(item, identifiers))
    except Exception as error:
        current_app.logger.warning("Shopper limit not checked (%s)", type(error).__name__)
        return None


def per_ip(ip: str | None) -> Exceeded | None:
    """Count a shopper request from this client IP."""
    return _hit("CUSTOMER_LIMIT_PER_IP", "ip", ip or "unknown")


def per_email(merchant_id: int, action: str, email: str) -> Exceeded | None:
    """Count a request that creates an account or mails this email."""
    return _hit("CUSTOMER_LIMIT_PER_EMAIL", action, merchant_id, email)


def sign_in_blocked(merchant_id: int, email: str, ip: str | None) -> Exceeded | None:
    """Whether failed sign-ins for this email (from this IP, or in all) used up their allowance."""
    return _test("CUSTOMER_FAILURES_PER_EMAIL_AND_IP", "failures", merchant_id, email, ip) or _test(
        "CUSTOMER_FAILURES_PER_EMAIL", "failures", merchant_id, email
    )


def sign_in_failed(merchant_id: int, email: str, ip: str | None) -> None:
    """Count a failed sign-in for this email from this IP."""
    _hit("CUSTOMER_FAILURES_PER_EMAIL_AND_IP", "failures", merchant_id, email, ip)
    _hit("CUSTOMER_FAILURES_PER_EMAIL", "failures", merchant_id, email)
