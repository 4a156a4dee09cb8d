"""Mail: rendered from templates/mail/, enqueued from requests, delivered by a real SMTP server.

The SMTP tests run aiosmtpd on a free loopback port with a self-signed certificate the test
trusts through SSL_CERT_FILE, and read the delivered message back.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import tasks
from portal.accounts.models import User
from portal.mail import build_message, deliver_mail, saved_mails, send_mail
from tests.conftest import PASSWORD, csrf_token, make_user
from tests.helpers import HX, count
from tests.smtp import SMTP_USER, Inbox

Mailbox = Callable[[], list[EmailMessage]]


# --- rendering and the console transport ----------------------------------------------------


def test_a_sign_up_sends_the_confirmation_mail(client: FlaskClient, mailbox: Mailbox) -> None:
    form = {
        "csrf_token": csrf_token(client, "/auth/register"),
        "email": "Maker@Shop.test",
        "password": PASSWORD,
        "store_name": "Maker & Co <Ceramics>",
    }
    response = client.post("/auth/register", data=form)

    assert response.status_code == 303, response.get_data(as_text=True)
    [mail] = mailbox()
    assert mail["To"] == "maker@shop.test"
    assert mail["Subject"] == "Confirm your email for the merchant key portal"
    assert mail["From"] == "Merchant key portal <no-reply@localhost>"
    assert mail["Message-ID"] and mail["Date"]
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Maker & Co <Ceramics>" in plain  # plain text is not HTML-escaped
    assert "Maker &amp; Co &lt;Ceramics&gt;" in html and "<Ceramics>" not in html
    assert "http://portal.test/auth/confirm?token=" in plain
    assert 'href="http://portal.test/auth/confirm?token=' in html


def test_the_welcome_mail_links_to_the_keys(app: Flask, mailbox: Mailbox) -> None:
    make_user("maker@shop.test", "Maker & Co <Ceramics>")  # an operator's create-merchant

    [mail] = mailbox()
    assert mail["Subject"] == "Welcome to the merchant key portal"
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Maker & Co <Ceramics>" in plain
    assert "Maker &amp; Co &lt;Ceramics&gt;" in html and "<Ceramics>" not in html
    assert "http://portal.test/settings/api-keys" in plain
    assert 'href="http://portal.test/settings/api-keys"' in html


def test_links_come_from_portal_url_never_from_the_request_host(
    app: Flask, mailbox: Mailbox
) -> None:
    app.config["PORTAL_URL"] = "https://keys.shop-platform.example"
    with app.test_request_context("/auth/register", base_url="http://evil.example"):
        send_mail("a@shop.test", "Welcome", "welcome", store_name="S", email="a@shop.test")

    [mail] = mailbox()
    body = mail.get_body(("plain",)).get_content() + mail.get_body(("html",)).get_content()
    assert "https://keys.shop-platform.example/settings/api-keys" in body
    assert "evil.example" not in body


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_a_refused_sign_up_sends_no_mail(client: FlaskClient, mailbox: Mailbox, htmx: bool) -> None:
    form = {
        "csrf_token": csrf_token(client, "/auth/register"),
        "email": "maker@shop.test",
        "password": "short",
        "store_name": "Maker",
    }

    response = client.post("/auth/register", data=form, headers=HX if htmx else {})

    assert response.status_code == 422
    assert mailbox() == []
    assert count(User) == 0


def test_the_console_transport_logs_who_and_what_about_but_not_the_body(
    app: Flask, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portal.mail")

    send_mail("a@shop.test", "Your store is ready", "welcome", store_name="Hidden", email="a@x.t")

    [mail] = mailbox()
    assert "Hidden" in mail.get_body(("plain",)).get_content()
    [record] = [r for r in caplog.records if r.name == "portal.mail"]
    assert "a@shop.test" in record.getMessage()
    assert "'Your store is ready'" in record.getMessage()
    assert "Hidden" not in caplog.text
    saved = list(Path(app.config["MAIL_DIR"]).glob("*.eml"))
    assert [str(path) in record.getMessage() for path in saved] == [True]


def test_mails_are_read_back_oldest_first(app: Flask, mailbox: Mailbox) -> None:
    for number in range(12):
        send_mail(f"n{number}@shop.test", f"Mail {number}", "welcome", store_name="S", email="e")

    assert [mail["Subject"] for mail in mailbox()] == [f"Mail {n}" for n in range(12)]
    assert saved_mails(Path(app.config["MAIL_DIR"]) / "missing") == []


@pytest.mark.parametrize(
    ("to", "subject", "problem"),
    [
        ([], "Hello", "at least one recipient"),
        ("a@shop.test", "Hello\r\nBcc: victim@else.test", "linefeed|newline|carriage"),
    ],
)
def test_bad_mail_is_refused_before_anything_is_queued(
    app: Flask, mailbox: Mailbox, to: Any, subject: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        send_mail(to, subject, "welcome", store_name="S", email="e")

    assert mailbox() == []


def test_send_mail_only_enqueues(app: Flask, mailbox: Mailbox) -> None:
    tasks.huey.immediate = False  # queued until something runs it
    try:
        tasks.huey.flush()  # only this test's task in the queue
        send_mail("later@shop.test", "Later", "welcome", store_name="S", email="e")
        assert mailbox() == []
        assert tasks.huey.pending_count() == 1
        task = tasks.huey.dequeue()
        tasks.huey.execute(task)
    finally:
        tasks.huey.immediate = True

    assert [mail["To"] for mail in mailbox()] == ["later@shop.test"]


# --- SMTP: STARTTLS and implicit TLS, through a real server ---------------------------------


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["smtp-starttls", "smtps"])
def test_mail_is_delivered_through_smtp(
    app: Flask, smtp_server: Callable[..., tuple[str, Inbox]], implicit_tls: bool
) -> None:
    url, inbox = smtp_server(implicit_tls=implicit_tls)
    app.config["MAIL_URL"] = url

    send_mail(
        ["owner@shop.test", "ops@shop.test"], "Welcome to the merchant key portal", "welcome",
        store_name="Quiet Corner Bookshop", email="owner@shop.test",
    )  # fmt: skip

    [(recipients, mail)] = inbox.received
    assert recipients == ["owner@shop.test", "ops@shop.test"]
    # Over STARTTLS with the URL's percent-encoded password, decoded.
    assert inbox.logins == ([] if implicit_tls else [SMTP_USER])
    assert mail["Subject"] == "Welcome to the merchant key portal"
    assert mail.get_content_type() == "multipart/alternative"
    assert "Quiet Corner Bookshop" in mail.get_body(("plain",)).get_content()
    assert "Quiet Corner Bookshop" in mail.get_body(("html",)).get_content()
    assert list(Path(app.config["MAIL_DIR"]).glob("*.eml")) == []  # not the console


def test_an_untrusted_certificate_is_refused(
    app: Flask,
    smtp_server: Callable[..., tuple[str, Inbox]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    url, inbox = smtp_server()
    other_ca = tmp_path / "empty.pem"
    other_ca.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    app.config["MAIL_URL"] = url
    message = build_message(["owner@shop.test"], "Hi", "welcome", store_name="S", email="e")

    with pytest.raises(ssl.SSLCertVerificationError):
        deliver_mail.call_local(message.as_bytes())

    assert inbox.received == [] and inbox.logins == []  # the password never left


def test_a_wrong_password_fails_the_delivery(
    app: Flask, smtp_server: Callable[..., tuple[str, Inbox]]
) -> None:
    import smtplib

    url, inbox = smtp_server()
    app.config["MAIL_URL"] = url.replace("s3cret%20pass", "guess")
    message = build_message(["owner@shop.test"], "Hi", "welcome", store_name="S", email="e")

    with pytest.raises(smtplib.SMTPAuthenticationError):
        deliver_mail.call_local(message.as_bytes())

    assert inbox.received == []


def test_every_user_of_a_new_merchant_gets_exactly_one_welcome(mailbox: Mailbox) -> None:
    make_user("one@shop.test", "One")
    make_user("two@shop.test", "Two")

    assert sorted(mail["To"] for mail in mailbox()) == ["one@shop.test", "two@shop.test"]
