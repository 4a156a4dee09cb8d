"""Portal plumbing: the home redirect, security headers and error pages."""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    request,
    url_for,
)
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    default_exceptions,
)

from portal.api.errors import http_error_response, internal_error_response, is_api_path
from portal.htmx import render_page_or_block
from portal.lean import HSTS, append_headers, header_names, is_lean_request

bp = Blueprint("web", __name__)


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
PORTAL_BLUEPRINTS = frozenset({"web", "accounts", "keys", "usage", "members", "twofactor"})


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """Headers every response carries; the API's own headers are set before and kept."""
    if is_lean_request():
        return _lean_security_headers(response)
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


LEAN_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def _lean_security_headers(response: Response) -> Response:
    """The same headers for JSON answers, without the page-only checks (one scan of the list)."""
    present = header_names(response)
    extra = [(name, value) for name, value in LEAN_HEADERS if name.lower() not in present]
    if current_app.config.get("PORTAL_ENV") == "production" and (
        "strict-transport-security" not in present
    ):
        extra.append(("Strict-Transport-Security", HSTS))
    append_headers(response, extra)
    return response


# Titles and messages of the portal's error pages; other codes use Werkzeug's own wording.
ERROR_WORDS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Not allowed", "Your account may not do this. Ask an owner of the store."),
    404: ("Page not found", "There is nothing here, or it is not yours."),
    405: ("Method not allowed", "This page does not take that kind of request."),
    429: ("Too many attempts", "Too many attempts. Wait a minute and try again."),
}
CSRF_WORDS = (
    "Form expired",
    "The form was missing its security token or it expired. "
    "Go back, reload the page and try again.",
)


def error_page(
    status: int, title: str, message: str, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    """An error answer: the whole page, or for htmx only its card (never a page in a page)."""
    response = render_page_or_block(
        "errors/error.html", "main", status, title=title, message=message, **context
    )
    response.headers.update(headers or {})
    return response


def http_error_page(error: HTTPException) -> Response:
    """The portal's page for an HTTP error (the API's JSON error under /api/v1)."""
    if is_api_path():
        return http_error_response(error)
    status = error.code or 500
    title, message = ERROR_WORDS.get(status, (error.name, error.description or error.name))
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    if isinstance(error, RateLimitExceeded):
        window = getattr(getattr(error, "limit", None), "limit", None)
        headers["Retry-After"] = str(window.get_expiry() if window is not None else 60)
    return error_page(status, title, message, headers)


def csrf_error_page(error: CSRFError) -> Response:
    """A form posted without its token, or with another session's: nothing was done."""
    current_app.logger.info("CSRF check failed: %s", error.description)
    return error_page(400, *CSRF_WORDS)


def server_error_page(error: InternalServerError) -> Response:
    """A 500 with a reference to quote; the traceback goes to the log (Flask logs it), never out."""
    if is_api_path():
        return internal_error_response(error.original_exception or error)
    request_id = f"req_{uuid.uuid4().hex}"
    current_app.logger.error(
        "Unhandled error in portal request %s (%s %s)", request_id, request.method, request.path
    )
    return error_page(
        500,
        "Something went wrong",
        "Something went wrong on our side and nothing was changed. Try again in a moment; "
        "if it keeps happening, quote this reference to us.",
        {"X-Request-Id": request_id},
        request_id=request_id,
    )


def register_error_pages(app: Flask) -> None:
    """HTML error pages (fragments for htmx) for every HTTP error of the portal, 500 included."""
    for status in default_exceptions:
        if status != 500:
            app.register_error_handler(status, http_error_page)
    app.register_error_handler(CSRFError, csrf_error_page)
    # The app's 500 handler: replaces the API's own at app level, so it answers the API's JSON
    # under /api/v1 itself (the API blueprint's handlers still come first for its routes).
    app.register_error_handler(InternalServerError, server_error_page)
