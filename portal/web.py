"""Portal plumbing: the home redirect, security headers and error pages."""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError

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
