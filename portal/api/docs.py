"""`GET /api/docs`: the API reference, rendered in the browser from the OpenAPI document by
Swagger UI (from the npm registry, copied under static/vendor/ by `make setup`)."""

from __future__ import annotations

from flask import Flask, render_template

from portal.extensions import limiter


@limiter.exempt
def api_docs() -> str:
    """The rendered reference of every /api/v1 route; no key or sign-in needed."""
    return render_template("api/docs.html")


def init_app(app: Flask) -> None:
    """Mount /api/docs on the app itself, beside /api/v1 and outside its key gate."""
    app.add_url_rule("/api/docs", "api_docs", api_docs, methods=["GET"])
