"""Codes and reset links travel through a real SMTP server (aiosmtpd on a loopback port)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient

from portal.accounts.models import User
from tests.conftest import make_key
from tests.customers.conftest import SHOPPER_PASSWORD, code_in, reset_link_in

SHOP = "https://shop.example.com"


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free loopback port."""
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def app_config(smtp: tuple[Inbox, int]) -> dict[str, Any]:
    """Deliver mail to the test's SMTP server."""
    smtp[0].messages.clear()
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp[1]}"}


def _call(client: FlaskClient, token: str, path: str, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}", "Origin": SHOP}
    )


def test_a_code_and_a_reset_link_arrive_by_smtp_and_work(
    client: FlaskClient, user: User, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    token = make_key(user, "publishable", allowed_origins=[SHOP])[1]
    email = {"email": "ada@example.com"}
    assert (
        _call(client, token, "/customers", {**email, "password": SHOPPER_PASSWORD}).status_code
        == 201
    )

    assert _call(client, token, "/customers/codes", email).status_code == 202
    assert (
        _call(client, token, "/customers/codes", {"email": "nobody@example.com"}).status_code == 202
    )
    assert _call(client, token, "/customers/password-resets", email).status_code == 202

    assert [recipients for recipients, _ in inbox.messages] == [["ada@example.com"]] * 2
    code_mail, reset_mail = (message for _, message in inbox.messages)
    assert code_mail["Subject"] == "Your sign-in code for Shop One"
    assert code_mail.get_body(preferencelist=("html",)) is not None
    signed_in = _call(client, token, "/customers/sessions", {**email, "code": code_in(code_mail)})
    assert signed_in.status_code == 201

    origin, reset_token = reset_link_in(reset_mail)
    assert origin == SHOP
    confirmed = _call(
        client,
        token,
        "/customers/password-resets/confirm",
        {"token": reset_token, "password": "a brand new password"},
    )
    assert confirmed.status_code == 204
    # The mails carry the code or the link, and nothing else about the account.
    for message in (code_mail, reset_mail):
        assert SHOPPER_PASSWORD not in message.as_string()
