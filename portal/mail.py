"""Outgoing mail: `send_mail` renders `templates/mail/<template>.txt` and `.html` and delivers it.

A minimal mailer with the interface of the worker-backed one: `MAIL_URL=smtp://host:port`
delivers through SMTP; anything else keeps the message in `app.extensions["sent_mail"]` (the
development console and the tests read it there).
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import current_app, render_template

DEFAULT_SENDER = "Store <no-reply@portal.localhost>"


def build_message(
    to: str | list[str], subject: str, template: str, **context: object
) -> EmailMessage:
    """The message: a plain-text body with an HTML alternative, both from templates."""
    message = EmailMessage()
    message["From"] = current_app.config.get("MAIL_SENDER", DEFAULT_SENDER)
    message["To"] = ", ".join([to] if isinstance(to, str) else to)
    message["Subject"] = subject
    message.set_content(render_template(f"mail/{template}.txt", **context))
    message.add_alternative(render_template(f"mail/{template}.html", **context), subtype="html")
    return message


def send_mail(to: str | list[str], subject: str, template: str, **context: object) -> None:
    """Render and deliver one message to `to`."""
    message = build_message(to, subject, template, **context)
    url = urlsplit(current_app.config.get("MAIL_URL", "console://"))
    if url.scheme == "smtp":
        with smtplib.SMTP(url.hostname or "localhost", url.port or 25, timeout=10) as smtp:
            smtp.send_message(message)
        return
    current_app.extensions.setdefault("sent_mail", []).append(message)
    current_app.logger.info("Mail kept, not sent: %s", subject)
