"""The response to keys a secret scanner found in public code (`POST /api/v1/leaked-keys`).

The request does the same work for every submitted string, whether it is one of ours or not:
it checks the checksum and computes the key hash of each, then enqueues one task with the
hashes of the well-formed ones. The task (in the worker) finds the keys, marks them leaked,
revokes a leaked secret key when its store's setting says so, writes the audit events and
mails the store's users. Publishable keys are public by design: noted, never revoked.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.keys import tokens
from portal.keys.events import key_event
from portal.keys.models import STATE_ACTIVE, STATE_REVOKED, ApiKey, AuditEvent
from portal.mail import send_mail
from portal.tasks import task

MAX_KEYS = 100
KEY_TEXT_MAX = 200
LEAK_ACTION = "leaked"
REPORTER = "Secret scanner"
# Hashed in place of a malformed string, so every submitted string costs one HMAC.
_FILLER = "sk_live_" + "0" * (tokens.RANDOM_LENGTH + tokens.CHECKSUM_LENGTH)

log = logging.getLogger(__name__)


def report_leaks(submitted: list[str], reporter_ip: str | None) -> int:
    """Take a scanner's report: constant work per string, then one task; returns how many."""
    pepper = current_app.config["API_KEY_PEPPER"]
    hashes = []
    for text in submitted:
        parsed = tokens.parse_token(text)
        digest = tokens.hash_token(text if parsed else _FILLER, pepper)
        if parsed is not None:
            hashes.append(digest)
    respond_to_leaks(hashes, reporter_ip)
    return len(submitted)


@task()
def respond_to_leaks(key_hashes: list[str], reporter_ip: str | None) -> int:
    """Mark the reported keys leaked, revoke secret ones where the store says so, and tell the
    store's users; returns how many keys of ours were reported."""
    if not key_hashes:
        return 0
    found = list(
        db.session.scalars(
            select(ApiKey)
            .where(ApiKey.key_hash.in_(set(key_hashes)))
            .options(selectinload(ApiKey.merchant))
            .order_by(ApiKey.id)
        )
    )
    now = utcnow()
    by_merchant: dict[int, list[tuple[ApiKey, bool]]] = defaultdict(list)
    for key in found:
        revoke = (
            key.key_type == "secret"
            and key.merchant.revoke_leaked_keys
            and key.state_at(now) == STATE_ACTIVE
        )
        first_report = key.leaked_at is None
        key.leaked_at = now
        db.session.add(
            AuditEvent(
                merchant_id=key.merchant_id,
                api_key=key,
                action=LEAK_ACTION,
                actor=REPORTER,
                ip=reporter_ip,
                details={"revoked": revoke},
            )
        )
        if revoke:
            key.revoked_at = now
            key.revoked_by_name = REPORTER
            key.logged_state = STATE_REVOKED
            db.session.add(
                AuditEvent(
                    merchant_id=key.merchant_id,
                    api_key=key,
                    action="revoked",
                    actor=REPORTER,
                    ip=reporter_ip,
                    details={"reason": "leaked"},
                )
            )
        key_event(key, "api_key.leaked", revoked=revoke)
        if revoke:
            key_event(key, "api_key.revoked", reason="leaked")
        if first_report or revoke:
            by_merchant[key.merchant_id].append((key, revoke))
    db.session.commit()
    for merchant_id, keys in by_merchant.items():
        _mail_users(merchant_id, keys)
    log.info("Leak report: %d of %d hashes matched keys", len(found), len(key_hashes))
    return len(found)


def _mail_users(merchant_id: int, keys: list[tuple[ApiKey, bool]]) -> None:
    """One mail to the store's users listing the leaked keys and what happened to each."""
    recipients = list(
        db.session.scalars(
            select(User.email).where(User.merchant_id == merchant_id).order_by(User.id)
        )
    )
    if not recipients:
        return
    count = len(keys)
    send_mail(
        recipients,
        f"{count} API key{'s' if count > 1 else ''} found in public code",
        "key_leaked",
        keys=[
            {
                "id": key.id,
                "label": key.label,
                "masked": key.masked,
                "key_type": key.key_type,
                "revoked": revoked,
            }
            for key, revoked in keys
        ],
    )
