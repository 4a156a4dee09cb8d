"""Mail: render plain text and HTML from templates/mail/, and deliver it from the worker.

MAIL_URL picks the transport: `console://` logs each mail (recipients and subject, never the
body) and saves it as an .eml under MAIL_DIR; `smtp://user:pass@host:587` sends with STARTTLS;
`smtps://user:pass@host:465` over TLS. Both SMTP transports verify the server's certificate.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template, url_for

from portal.tasks import task

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


def send_mail(to: str | list[str], subject: str, template: str, **context: object) -> None:
    """Render templates/mail/<template>.txt and .html with `context`, and enqueue the delivery."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise ValueError("send_mail needs at least one recipient")
    message = build_message(recipients, subject, template, **context)
    deliver_mail(message.as_bytes())


def build_message(
    recipients: list[str], subject: str, template: str, **context: object
) -> EmailMessage:
    """The multipart/alternative message: plain text first, then HTML."""
    text, html = _render(template, **context)
    config = current_app.config
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = config["MAIL_FROM"]
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    sender_domain = parseaddr(config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=sender_domain)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _render(template: str, **context: object) -> tuple[str, str]:
    """Both bodies; `link(endpoint, **values)` builds absolute URLs from PORTAL_URL."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    base_url = app.config["PORTAL_URL"]
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))

    def link(endpoint: str, **values: object) -> str:
        """An absolute link: never built from a request's Host header, which the client chose."""
        return origin + url_for(endpoint, **values)

    context.setdefault("portal_url", base_url)
    context.setdefault("link", link)
    # A request context of its own, so a mail renders the same from a request or the worker.
    with app.test_request_context("/", base_url=base_url):
        text = render_template(f"mail/{template}.txt", **context)
        html = render_template(f"mail/{template}.html", **context)
    return text, html


@task(retries=5, retry_delay=60)
def deliver_mail(raw: bytes) -> None:
    """Deliver one rendered message through MAIL_URL (the worker; retried if the server fails)."""
    message = message_from_bytes(raw, policy=policy.SMTP)
    url = current_app.config["MAIL_URL"]
    scheme = url.partition("://")[0]
    if scheme == "console":
        _to_console(message, Path(current_app.config["MAIL_DIR"]))
    else:
        _to_smtp(message, url)


def _to_console(message: EmailMessage, directory: Path) -> Path:
    """Save the message as an .eml file and log who it went to (not what it says)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(message.as_bytes())
    logger.info(
        "Mail to %s: %r (console://, saved as %s)", message["To"], str(message["Subject"]), path
    )
    return path


def _to_smtp(message: EmailMessage, url: str) -> None:
    """Send over SMTP: STARTTLS for smtp://, TLS from the first byte for smtps://."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    context = ssl.create_default_context()
    recipients = [address for _, address in getaddresses(message.get_all("To", []))]
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=SMTP_TIMEOUT_SECONDS, context=context
        )
    else:
        server = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    with server:
        if parts.scheme == "smtp":
            server.starttls(context=context)
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        server.send_message(message, to_addrs=recipients)
    logger.info(
        "Mail to %s: %r (sent through %s:%s)", message["To"], str(message["Subject"]), host, port
    )


def saved_mails(directory: str | Path) -> list[EmailMessage]:
    """The mails the console transport saved in `directory`, oldest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.eml"), key=lambda path: int(path.name.split("-")[0]))
    return [message_from_bytes(path.read_bytes(), policy=policy.default) for path in paths]
