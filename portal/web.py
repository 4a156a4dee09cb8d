"""Portal plumbing: the signed-in user, access control, security headers and error pages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy import select

from portal.accounts.models import User
from portal.extensions import db
from portal.htmx import full_redirect

bp = Blueprint("web", __name__)

View = TypeVar("View", bound=Callable[..., Any])


@bp.before_app_request
def load_signed_in_user() -> None:
    """Put the signed-in user and merchant on `g`, if the session is still valid."""
    g.user = None
    g.merchant = None
    if request.blueprint == "api":
        return  # the API authenticates by key; its responses never depend on the session cookie
    user_id = session.get("user_id")
    if user_id is None:
        return
    user = db.session.scalar(select(User).where(User.id == user_id))
    if user is None or session.get("epoch") != user.session_epoch:
        session.clear()
        return
    g.user = user
    g.merchant = user.merchant


def login_required(view: View) -> View:
    """Send anonymous visitors to the sign-in page, remembering where they were going."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            login = url_for("accounts.login", next=request.full_path.rstrip("?"))
            if request.headers.get("HX-Request") == "true":
                # Following a redirect, htmx would swap the sign-in page into a fragment's place.
                return full_redirect(login)
            return redirect(login)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def safe_next(target: str | None, default: str) -> str:
    """A local path to go to after signing in; anything else (open redirects) becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    # Browsers drop tabs and newlines from URLs ("/\t/evil.com" is "//evil.com"), and a newline
    # in a Location header is a server error: refuse whitespace and control characters.
    if any(char.isspace() or not char.isprintable() for char in target):
        return default
    return target


@bp.route("/")
def index() -> Response:
    """Signed-in merchants land on their keys; everyone else on sign-in."""
    if g.user is None:
        return redirect(url_for("accounts.login"))
    return redirect(url_for("keys.list_keys"))


# No inline script, no eval (htmx 4 needs neither: no hx-on, no js: values, no trigger filters,
# and its indicator stylesheet is switched off in base.html), no plugins, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)
PORTAL_BLUEPRINTS = frozenset({"web", "accounts", "keys", "usage"})
HSTS = "max-age=63072000; includeSubDomains"


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """Headers every response carries; the API's own headers are set before and kept."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if current_app.config.get("PORTAL_ENV") == "production":
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if g.get("user") is not None and request.blueprint in PORTAL_BLUEPRINTS:
        # Signed-in pages show keys, usage and audit trails: keep every one out of caches
        # (shared or the browser's back/forward history on a shared computer).
        response.headers["Cache-Control"] = "no-store"
    return response


def register_error_pages(app: Flask) -> None:
    """HTML error pages for the portal."""

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return render_template(
            "errors/error.html",
            title="Page not found",
            message="There is nothing here, or it is not yours.",
        ), 404

    @app.errorhandler(405)
    def method_not_allowed(_error: Exception) -> tuple[str, int]:
        return render_template(
            "errors/error.html",
            title="Method not allowed",
            message="This page does not take that kind of request.",
        ), 405

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        app.logger.info("CSRF check failed: %s", error.description)
        return render_template(
            "errors/error.html",
            title="Form expired",
            message="The form was missing its security token or it expired. "
            "Go back, reload the page and try again.",
        ), 400

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(_error: RateLimitExceeded) -> tuple[str, int]:
        return render_template(
            "errors/error.html",
            title="Too many attempts",
            message="Too many attempts. Wait a minute and try again.",
        ), 429
