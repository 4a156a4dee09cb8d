"""One URL serves the page and its fragment: helpers for htmx requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, make_response, redirect, render_template, request
from jinja2_fragments.flask import render_block


def is_partial() -> bool:
    """Whether to answer with a fragment: htmx, but not boosted and not a history restore."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_page_or_block(
    template_name: str, block_name: str, status: int = 200, **context: Any
) -> Response:
    """Render the whole page, or just `block_name` for an htmx request; always Vary: HX-Request."""
    if is_partial():
        body = render_block(template_name, block_name, **context)
    else:
        body = render_template(template_name, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def see_other(location: str, render_destination: Callable[[], Response]) -> Response:
    """After a POST: 303 to `location`, or for htmx the destination's fragment and its URL."""
    if is_partial():
        response = render_destination()
        response.headers["HX-Push-Url"] = location
    else:
        response = redirect(location, code=303)
    response.vary.add("HX-Request")
    return response


def full_redirect(location: str) -> Response:
    """A whole-page navigation: 303 without htmx, HX-Redirect with it (e.g. after signing in)."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = location
    else:
        response = redirect(location, code=303)
    response.vary.add("HX-Request")
    return response
