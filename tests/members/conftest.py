"""Fixtures of the members tests: a store with its owner, and reading invitation mails."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage

import pytest

LINK = re.compile(r"http://[^/\s]+(/invitations/[A-Za-z0-9_-]+)")


def invitation_link(mail: EmailMessage) -> str:
    """The path of the invitation link in a mail (the same in its text and HTML parts)."""
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    [path] = set(LINK.findall(plain))
    assert path in html
    return path


@pytest.fixture
def last_link(mailbox: Callable[[], list[EmailMessage]]) -> Callable[[], str]:
    """`last_link()`: the invitation link of the last mail sent."""
    return lambda: invitation_link(mailbox()[-1])
