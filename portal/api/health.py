"""`GET /healthz`: liveness, at the application root, without touching the database."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from portal.extensions import limiter


@limiter.exempt
def healthz() -> Response:
    """The process answers; nothing else is checked (a database outage must not restart it)."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Mount /healthz on the app itself, outside /api/v1 and its key gate."""
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
