"""Codes and reset links travel through a real SMTP server (aiosmtpd on a loopback port)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import User
from tests.conftest import make_key
from tests.customers.conftest import SHOPPER_PASSWORD, code_in, reset_link_in
from tests.smtp import Inbox

SHOP = "https://shop.example.com"


@pytest.fixture
def inbox(app: Flask, smtp_server: Callable[..., tuple[str, Inbox]]) -> Inbox:
    """Deliver the app's mail to a real SMTP server (STARTTLS, with a login)."""
    url, received = smtp_server()
    app.config["MAIL_URL"] = url
    return received


def _call(client: FlaskClient, token: str, path: str, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}", "Origin": SHOP}
    )


def test_a_code_and_a_reset_link_arrive_by_smtp_and_work(
    client: FlaskClient, user: User, inbox: Inbox
) -> None:
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

    assert [recipients for recipients, _ in inbox.received] == [["ada@example.com"]] * 2
    code_mail, reset_mail = (message for _, message in inbox.received)
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
