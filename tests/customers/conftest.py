"""Shopper fixtures: the mail the app sent, a movable clock, and a store's shoppers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from portal.accounts.models import User
from portal.customers import service as customers
from portal.database import utcnow

SHOPPER_PASSWORD = "plum jam on toast"
CODE_PATTERN = re.compile(r"\b(\d{6})\b")
RESET_LINK_PATTERN = re.compile(r"(\S+)/reset-password\?token=(crs_[0-9A-Za-z]+)")


class SentMail(Sequence[EmailMessage]):
    """The mail the app sent during the test, oldest first, read afresh at each look."""

    def __init__(self, read: Callable[[], list[EmailMessage]]) -> None:
        self._read = read
        self._before = len(read())  # e.g. the store owner's welcome mail

    def _sent(self) -> list[EmailMessage]:
        return self._read()[self._before :]

    def __getitem__(self, index: Any) -> Any:
        return self._sent()[index]

    def __len__(self) -> int:
        return len(self._sent())

    def __eq__(self, other: object) -> bool:
        return self._sent() == other

    __hash__ = None  # type: ignore[assignment]


@pytest.fixture
def sent_mail(mailbox: Callable[[], list[EmailMessage]], user: User) -> SentMail:
    """What the app mailed during the test once the store existed, oldest first (the one place
    mail is read)."""
    return SentMail(mailbox)


def body_of(message: EmailMessage) -> str:
    """The plain-text part of a message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def code_in(message: EmailMessage) -> str:
    """The one-time code a mail carries."""
    match = CODE_PATTERN.search(body_of(message))
    assert match, body_of(message)
    return match.group(1)


def reset_link_in(message: EmailMessage) -> tuple[str, str]:
    """(origin, token) of the reset link a mail carries."""
    match = RESET_LINK_PATTERN.search(body_of(message))
    assert match, body_of(message)
    return match.group(1), match.group(2)


class Clock:
    """The service's idea of now, moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: Any) -> None:
        """Move time forward."""
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the shopper service's clock; `clock.advance(minutes=15)` moves it."""
    frozen = Clock()
    monkeypatch.setattr(customers, "utcnow", frozen)
    return frozen


def register(merchant_id: int, email: str = "ada@example.com", **fields: Any) -> Any:
    """A registered shopper, signed in, through the service."""
    return customers.register(
        merchant_id,
        email,
        fields.pop("password", SHOPPER_PASSWORD),
        fields.pop("name", "Ada Lovelace"),
        customers.Client(ip="198.51.100.7", user_agent="Firefox on Linux"),
    )
