"""Per-key CORS: preflights answered without a key, actual requests by the key's allowed origins.

Written here rather than with Flask-Cors: it decides origins per resource, not per key (callable
origins are unsupported); it would add `Access-Control-Allow-Origin` to the 403
`origin_not_allowed` answer; and its preflight lists one configured set of methods with Flask's
200, where ours lists what the requested path answers, with 204. So the few headers are set here,
from the decision the gate made for this request.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from portal.api.errors import is_api_path
from portal.lean import append_headers

ALLOW_HEADERS = "Authorization, X-API-Key, X-Site-ID, Content-Type, X-Customer-Token"
# Chromium caps preflight caching at two hours.
MAX_AGE_SECONDS = 7200
# Response headers browser code may read besides the CORS-safelisted ones.
EXPOSE_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, "
    "Deprecation, Sunset, Link, X-Request-Id"
)
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods() -> str:
    """The methods the requested path answers, in a stable order."""
    adapter = current_app.create_url_adapter(request)
    methods = set(adapter.allowed_methods()) if adapter is not None else set()
    methods.add("OPTIONS")
    ordered = [method for method in _METHOD_ORDER if method in methods]
    ordered += sorted(methods.difference(_METHOD_ORDER))
    return ", ".join(ordered)


def preflight_response() -> Response:
    """204 for an OPTIONS preflight: no key needed, since the actual request is checked per key."""
    response = current_app.response_class(status=204)
    del response.headers["Content-Type"]
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = _allowed_methods()
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return response


def allow_origin(origin: str) -> None:
    """Let browser code on `origin` read this request's response."""
    g.api_cors_origin = origin


def add_cors_headers(response: Response) -> Response:
    """`Vary: Origin` on every API response; the allow headers only when the gate allowed them."""
    if not is_api_path():
        return response
    _vary_on_origin(response)
    origin = g.get("api_cors_origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    # Keys are never cookies: the API never takes credentials from a browser.
    response.headers.pop("Access-Control-Allow-Credentials", None)
    return response


def _vary_on_origin(response: Response) -> None:
    """Add `Origin` to `Vary` (cheaper than `response.vary`, which parses and rebuilds it)."""
    vary = None
    for name, value in response.headers._list:  # noqa: SLF001 - one pass, no lower() per lookup
        if name.lower() == "vary":
            vary = value
            break
    if vary is None:
        append_headers(response, (("Vary", "Origin"),))
    elif not vary:
        response.headers["Vary"] = "Origin"
    elif "origin" not in (part.strip().lower() for part in vary.split(",")):
        response.headers["Vary"] = f"{vary}, Origin"


def init_app(app: Flask) -> None:
    """Install the response hook (app-level, so unknown routes and 500s get `Vary` too)."""
    app.after_request(add_cors_headers)
