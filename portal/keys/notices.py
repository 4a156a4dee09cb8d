"""Key-expiry notices: a mail to the merchant's users seven days before a key expires.

Run every minute by the worker (portal.tasks.EVERY_MINUTE_JOBS). Each notice is recorded in the
key's audit log as `expiry_notice_sent`, so it goes once per key and expiry date: a key whose
expiry is moved later gets a new notice when the new date comes near.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.keys.events import key_event
from portal.keys.models import ApiKey, AuditEvent
from portal.keys.service import EXPIRING_SOON
from portal.mail import send_mail

NOTICE_ACTION = "expiry_notice_sent"


def send_expiry_notices() -> int:
    """Mail the users of every merchant whose key expires within seven days; returns how many."""
    now = utcnow()
    candidates = list(
        db.session.scalars(
            select(ApiKey)
            .where(
                ApiKey.revoked_at.is_(None),
                ApiKey.expires_at > now,
                ApiKey.expires_at <= now + EXPIRING_SOON,
            )
            .options(selectinload(ApiKey.market))
            .order_by(ApiKey.id)
        )
    )
    if not candidates:
        return 0
    noticed = _noticed_expiries([key.id for key in candidates])
    sent = 0
    for key in candidates:
        expires_at = _stamp(key.expires_at)
        if expires_at in noticed.get(key.id, set()):
            continue
        recipients = list(
            db.session.scalars(
                select(User.email).where(User.merchant_id == key.merchant_id).order_by(User.id)
            )
        )
        if recipients:
            _send_notice(key, recipients, now)
        key_event(key, "api_key.expiring")
        db.session.add(
            AuditEvent(
                merchant_id=key.merchant_id,
                api_key=key,
                action=NOTICE_ACTION,
                actor="system",
                details={"expires_at": expires_at, "recipients": recipients},
            )
        )
        db.session.commit()
        sent += 1
    return sent


def _noticed_expiries(key_ids: list[int]) -> dict[int, set[str]]:
    """For each key, the expiry dates a notice already went out for."""
    rows = db.session.execute(
        select(AuditEvent.api_key_id, AuditEvent.details).where(
            AuditEvent.action == NOTICE_ACTION, AuditEvent.api_key_id.in_(key_ids)
        )
    )
    noticed: dict[int, set[str]] = {}
    for key_id, details in rows:
        noticed.setdefault(key_id, set()).add((details or {}).get("expires_at"))
    return noticed


def _stamp(moment: datetime) -> str:
    """A time as the audit log stores it (to the minute, like every other event)."""
    return moment.isoformat(timespec="minutes")


def _send_notice(key: ApiKey, recipients: list[str], now: datetime) -> None:
    """The notice mail: which key, when, and what to do (rotate it, or let it stop)."""
    label = " ".join(key.label.split())  # a subject is one line, whatever the label holds
    days = max((key.expires_at - now).days, 0)
    send_mail(
        recipients,
        f"API key “{label}” expires on {key.expires_at:%-d %b %Y}",
        "key_expiry_notice",
        key_id=key.id,
        label=key.label,
        masked=key.masked,
        key_type=key.key_type,
        market=key.market.name if key.market else "All markets",
        expires_at=f"{key.expires_at:%A %-d %B %Y, %H:%M} UTC",
        in_days="less than a day" if days == 0 else f"{days} day{'s' if days != 1 else ''}",
    )
