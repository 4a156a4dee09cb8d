"""Key-expiry notices: the every-minute task mails the merchant's users 7 days ahead, once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import AuditEvent
from portal.tasks import every_minute
from tests.conftest import PASSWORD, make_key
from tests.helpers import html, text

Mailbox = Callable[[], list[EmailMessage]]
WELCOME = "Welcome to the merchant key portal"


def notices(mailbox: Mailbox) -> list[EmailMessage]:
    """The mails sent so far, without the welcome mails of sign-ups."""
    return [mail for mail in mailbox() if mail["Subject"] != WELCOME]


def teammate(user: User, email: str = "ops@shop.test") -> User:
    """A second user of the same merchant."""
    other = User(merchant_id=user.merchant_id, email=email, password_hash=hash_password(PASSWORD))
    db.session.add(other)
    db.session.commit()
    return other


def test_a_key_expiring_within_a_week_is_noticed_once_to_every_user_of_its_merchant(
    signed_in: FlaskClient, user: User, other_user: User, mailbox: Mailbox
) -> None:
    teammate(user)
    label = "Nightly <ERP> sync & export"
    key, _ = make_key(user, "secret", label=label, expires_at=utcnow() + timedelta(days=3, hours=2))
    make_key(other_user, "secret", label="Their sync", expires_at=utcnow() + timedelta(days=2))
    make_key(other_user, "secret", label="Far off", expires_at=utcnow() + timedelta(days=30))

    every_minute()
    every_minute()  # the next minute: nothing new to say

    theirs, mail = sorted(notices(mailbox), key=lambda mail: mail["To"] != "intruder@other.test")
    assert theirs["To"] == "intruder@other.test"  # each merchant's users hear of their own keys
    assert "Their sync" in theirs["Subject"]
    assert label not in theirs.get_body(("plain",)).get_content()
    assert mail["To"] == "owner@shop.test, ops@shop.test"
    assert mail["Subject"] == f"API key “{label}” expires on {key.expires_at:%-d %b %Y}"
    plain = mail.get_body(("plain",)).get_content()
    body = mail.get_body(("html",)).get_content()
    assert "expires in 3 days" in plain and key.masked in plain
    assert f"http://portal.test/settings/api-keys/{key.id}" in plain
    assert "Nightly &lt;ERP&gt; sync &amp; export" in body and "<ERP>" not in body
    assert f'href="http://portal.test/settings/api-keys/{key.id}"' in body

    [event] = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "expiry_notice_sent", AuditEvent.merchant_id == user.merchant_id
        )
    ).all()
    assert event.api_key_id == key.id and event.actor == "system"
    assert event.details["recipients"] == ["owner@shop.test", "ops@shop.test"]
    page = html(signed_in.get(f"/settings/api-keys/{key.id}"))
    assert "Expiry notice sent" in text(page)


@pytest.mark.parametrize(
    ("expires_in", "noticed"),
    [
        (timedelta(days=7, minutes=-1), True),
        (timedelta(hours=5), True),
        (timedelta(days=7, minutes=1), False),
        (timedelta(days=90), False),
    ],
)
def test_only_keys_expiring_within_seven_days_are_noticed(
    user: User, mailbox: Mailbox, expires_in: timedelta, noticed: bool
) -> None:
    make_key(user, "publishable", label="Storefront", expires_at=utcnow() + expires_in)
    make_key(user, "secret", label="Never expires")

    every_minute()

    assert len(notices(mailbox)) == (1 if noticed else 0)
    if noticed and expires_in < timedelta(days=1):
        assert (
            "expires in less than a day" in notices(mailbox)[0].get_body(("plain",)).get_content()
        )


def test_revoked_rotated_and_expired_keys_get_no_notice(user: User, mailbox: Mailbox) -> None:
    actor = keys.Actor(name=user.email, user_id=user.id)
    soon = utcnow() + timedelta(days=2)
    revoked, _ = make_key(user, "secret", label="Revoked", expires_at=soon)
    keys.revoke_key(revoked, actor)
    rotated, _ = make_key(user, "secret", label="Rotated", expires_at=soon)
    keys.rotate_key(rotated, "7d", actor)  # in its grace period: its replacement is what matters
    expired, _ = make_key(user, "secret", label="Gone", expires_at=soon)
    expired.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    every_minute()

    subjects = [mail["Subject"] for mail in notices(mailbox)]
    assert [subject for subject in subjects if "Revoked" in subject or "Gone" in subject] == []
    # The rotation's new key has the same settings, so its own notice is the one sent.
    assert subjects == [f"API key “Rotated” expires on {soon:%-d %b %Y}"]


def test_moving_the_expiry_later_brings_a_new_notice_when_the_new_date_nears(
    user: User, mailbox: Mailbox
) -> None:
    key, _ = make_key(user, "secret", label="Sync", expires_at=utcnow() + timedelta(days=2))
    every_minute()
    key.expires_at = utcnow() + timedelta(days=5)  # extended, and within a week again
    db.session.commit()

    every_minute()
    every_minute()

    assert len(notices(mailbox)) == 2


def test_a_label_with_a_line_break_still_gives_a_one_line_subject(
    user: User, mailbox: Mailbox
) -> None:
    key, _ = make_key(user, "secret", label="Sync", expires_at=utcnow() + timedelta(days=2))
    key.label = "Sync\r\nBcc: victim@else.test"  # whatever an old row may hold
    db.session.commit()

    every_minute()

    [mail] = notices(mailbox)
    assert mail["Subject"].startswith("API key “Sync Bcc: victim@else.test” expires")
    assert mail["Bcc"] is None
