"""The API's one JSON error helper, and the handlers that send every API error through it."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    default_exceptions,
)

from portal.api import bp
from portal.api.schemas.base import RequestModel

Body = TypeVar("Body", bound=RequestModel)

# Our code for each HTTP error werkzeug or Flask may raise under /api/v1.
HTTP_ERROR_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
DEFAULT_MESSAGES: dict[int, str] = {
    400: "The request is malformed.",
    404: "No such object for this merchant.",
    415: "Send the body as JSON with Content-Type: application/json.",
    429: "Too many requests; wait before retrying.",
}
JSON_CONTENT_TYPE = "application/json"
# No API body nests deeper than a few levels; this bound keeps every walk of it cheap.
MAX_JSON_DEPTH = 32


class ApiError(Exception):
    """An error the API answers with `error_response`; raise it anywhere in an API request."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The SPEC's `{"error": {"code", "message"}}` JSON with the given status and headers."""
    return _error_json(status, {"code": code, "message": message}, headers)


def _error_json(status: int, error: dict[str, Any], headers: dict[str, str] | None) -> Response:
    g.api_error_code = error["code"]  # for hooks that classify outcomes (usage)
    response = jsonify({"error": error})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def is_api_path(path: str | None = None) -> bool:
    """True for /api/v1 and everything under it."""
    prefix = bp.url_prefix or ""
    path = request.path if path is None else path
    return path == prefix or path.startswith(prefix + "/")


def json_body() -> dict[str, Any]:
    """The request's JSON object, or ApiError 400 (malformed, not an object) or 415 (not JSON)."""
    data = request.get_data(cache=True)  # 413 (RequestEntityTooLarge) past MAX_CONTENT_LENGTH
    if not data and not request.content_type:
        return {}  # e.g. `curl -X POST` without a body: the view reports the fields it needs
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        )
    try:
        body = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_request", f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object.")
    _refuse_unstorable_text(body)
    return body


def parse_body(model: type[Body]) -> Body:
    """The request's JSON body parsed by `model`; a bad field is a 400 that names it."""
    return model.parse(json_body())


def _too_deep() -> ApiError:
    return ApiError(
        400, "invalid_request", f"The body is nested too deeply (at most {MAX_JSON_DEPTH} levels)."
    )


def _unstorable(text: str) -> str | None:
    """What no text column can hold: U+0000 (PostgreSQL refuses it), or a lone surrogate
    (not UTF-8 at all)."""
    if "\x00" in text:
        return "must not contain the character U+0000"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain a lone surrogate (U+D800 to U+DFFF)"
    return None


def _refuse_unstorable_text(body: dict[str, Any]) -> None:
    """Walk the body (without recursion): too deep, or a string no column can hold, is a 400
    naming the field."""
    pending: list[tuple[Any, str, int]] = [(body, "", 1)]
    while pending:
        value, path, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(value, str):
            problem = _unstorable(value)
            if problem is not None:
                raise ApiError(400, "invalid_request", f"{path or 'body'} {problem}.")
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                problem = _unstorable(key)
                if problem is not None:
                    raise ApiError(400, "invalid_request", f"{path or 'body'} {problem}.")
                children.append((item, f"{path}.{key}" if path else key, depth + 1))
            pending.extend(reversed(children))  # the first field is reported first
        elif isinstance(value, list):
            pending.extend(
                reversed([(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)])
            )


def _path_exists(methods: Any) -> bool:
    """Whether the request's path matches a route for one of these methods."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in methods:
        try:
            adapter.match(request.path, method=method)
        except HTTPException:
            continue
        return True
    return False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _max_body_message() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if not limit:
        return "The request body is too large."
    return f"The request body is larger than the limit of {limit:,} bytes."


def http_error_response(error: HTTPException) -> Response:
    """An HTTP exception raised under /api/v1 as our JSON error."""
    status = error.code or 500
    code = HTTP_ERROR_CODES.get(status) or _code_from_name(error.name)
    headers: dict[str, str] = {}
    if type(error).description != error.description and error.description:
        message = error.description  # abort(404, description="...") chose its own words
    elif isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or ()))
        message = f"{request.method} is not allowed here; use {allowed}."
    elif status == 413:
        message = _max_body_message()
    else:
        message = DEFAULT_MESSAGES.get(status, f"{error.name}.")
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    if status == 429:
        window = getattr(getattr(error, "limit", None), "limit", None)  # Flask-Limiter's breach
        headers["Retry-After"] = str(window.get_expiry() if window is not None else 60)
    return error_response(status, code, message, headers)


def _code_from_name(name: str) -> str:
    return "_".join(name.lower().replace("-", " ").split()) or "error"


def internal_error_response(error: BaseException) -> Response:
    """A 500 with a request id in body and `X-Request-Id`; the traceback goes to the log only."""
    request_id = f"req_{uuid.uuid4().hex}"
    # The path never holds a key (keys travel in headers); headers and bodies are not logged.
    current_app.logger.error(
        "Unhandled error in API request %s (%s %s)",
        request_id,
        request.method,
        request.path,
        exc_info=(type(error), error, error.__traceback__),
    )
    return _error_json(
        500,
        {
            "code": "internal_error",
            "message": f"Something went wrong on our side. Quote {request_id} if you contact us.",
            "request_id": request_id,
        },
        {"X-Request-Id": request_id},
    )


def _api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.headers)


def _any_error(error: Exception) -> Response:
    if isinstance(error, ApiError):
        return _api_error(error)
    if isinstance(error, HTTPException):
        return http_error_response(error)
    return internal_error_response(error)


# Inside the blueprint (matched /api/v1 routes) these win over the portal's HTML pages. Flask
# prefers an app handler registered for the status code over a blueprint handler registered for
# a class, so the blueprint registers every code werkzeug knows, then the classes.
for _status in sorted(default_exceptions):
    if _status != 500:
        bp.register_error_handler(_status, http_error_response)
bp.register_error_handler(ApiError, _api_error)
bp.register_error_handler(HTTPException, http_error_response)
bp.register_error_handler(Exception, _any_error)


def init_app(app: Flask) -> None:
    """Send errors outside the blueprint's routes but under /api/v1 through `error_response` too."""

    @app.before_request
    def api_routing_error() -> Response | None:
        # Unknown paths and wrong methods never reach the blueprint, and the portal's 404/405
        # pages would answer them; the routing error is known before any view runs.
        routing_error = request.routing_exception
        if not is_api_path():
            return None
        if isinstance(routing_error, NotFound):
            return error_response(
                404, "not_found", f"No such endpoint: {request.method} {request.path}."
            )
        if isinstance(routing_error, MethodNotAllowed):
            if not _path_exists(routing_error.valid_methods or ()):
                # Werkzeug says 405 when a converter refuses the value (an id past the largest
                # one) although no method would match: that path does not exist.
                return error_response(
                    404, "not_found", f"No such endpoint: {request.method} {request.path}."
                )
            return http_error_response(routing_error)
        return None

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _api_error(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | HTTPException:
        return http_error_response(error) if is_api_path() else error

    @app.errorhandler(InternalServerError)
    def server_error(error: InternalServerError) -> Response | InternalServerError:
        if not is_api_path():
            return error
        return internal_error_response(error.original_exception or error)
