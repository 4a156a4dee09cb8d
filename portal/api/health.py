"""`GET /healthz`: liveness, at the application root, without touching the database.

It is answered by a small WSGI layer in front of Flask (`HealthLayer`): liveness needs nothing
from Flask (no request context, routing, hooks or session), so a probe costs a dict lookup and a
canned response. Any other method, or a request the layer does not recognise, goes to Flask,
where the same route is mounted (405 for a POST, the same body otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify

from portal.extensions import limiter
from portal.lean import HSTS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PATH = "/healthz"
BODY = b'{"status":"ok"}\n'
# The headers every JSON answer of the app carries (portal.web), with no-store for a probe.
HEADERS = (
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(BODY))),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


@limiter.exempt
def healthz() -> Response:
    """The process answers; nothing else is checked (a database outage must not restart it)."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


class HealthLayer:
    """WSGI middleware answering `GET`/`HEAD /healthz` itself; everything else goes to `app`."""

    def __init__(self, app: WSGIApplication, headers: Iterable[tuple[str, str]]) -> None:
        self.app = app
        self.headers = list(headers)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        """Answer a liveness probe, or pass the request on."""
        if environ.get("PATH_INFO") == PATH:
            method = environ.get("REQUEST_METHOD")
            if method == "GET":
                start_response("200 OK", list(self.headers))
                return [BODY]
            if method == "HEAD":
                start_response("200 OK", list(self.headers))
                return []
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    """Mount /healthz on the app itself, outside /api/v1 and its key gate, behind `HealthLayer`."""
    app.add_url_rule(PATH, "healthz", healthz, methods=["GET"])
    headers = list(HEADERS)
    if app.config.get("PORTAL_ENV") == "production":
        headers.append(("Strict-Transport-Security", HSTS))
    app.wsgi_app = HealthLayer(app.wsgi_app, headers)  # type: ignore[method-assign]
