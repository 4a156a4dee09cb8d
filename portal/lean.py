"""Lean requests: the API and /healthz skip what only the portal's pages need.

The API authenticates by key and never reads the session cookie; /healthz answers without
anything. So for them: no session is opened or saved, and the hooks of the portal's extensions
(CSRF, Flask-Limiter's request hook, which only guards sign-in and registration) do not run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

# Kept in step with the API blueprint's url_prefix (tests/scale/test_floor.py checks it).
API_PREFIX = "/api/v1"
LEAN_PATHS = frozenset({API_PREFIX, "/healthz"})
ENVIRON_FLAG = "portal.lean"


def is_lean_path(path: str) -> bool:
    """Whether a request to `path` is an API or health request."""
    return path in LEAN_PATHS or path.startswith(API_PREFIX + "/")


def is_lean_request() -> bool:
    """Whether the current request is an API or health request (decided once per request)."""
    environ = request.environ
    lean = environ.get(ENVIRON_FLAG)
    if lean is None:
        lean = environ[ENVIRON_FLAG] = is_lean_path(request.path)
    return lean


class PortalSessionInterface(SecureCookieSessionInterface):
    """The signed-cookie session, not opened or saved for lean requests."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session for lean requests (nothing reads it), else the cookie's."""
        if is_lean_path(request.path):
            request.environ[ENVIRON_FLAG] = True
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        """Lean responses never set or clear the session cookie."""
        if request.environ.get(ENVIRON_FLAG):
            return
        super().save_session(app, session, response)


Predicate = Callable[[], bool]


def _before_group(hooks: list[Callable[..., Any]], runs: Predicate) -> Callable[[], Any]:
    def grouped_before_request() -> Any:
        if not runs():
            return None
        for hook in hooks:
            answer = hook()
            if answer is not None:
                return answer
        return None

    return grouped_before_request


def _after_group(
    hooks: list[Callable[..., Any]], runs: Predicate
) -> Callable[[Response], Response]:
    def grouped_after_request(response: Response) -> Response:
        if not runs():
            return response
        for hook in reversed(hooks):  # Flask runs after-request hooks last registered first
            response = hook(response)
        return response

    return grouped_after_request


def _teardown_group(
    hooks: list[Callable[..., Any]], runs: Predicate
) -> Callable[[BaseException | None], None]:
    def grouped_teardown_request(error: BaseException | None = None) -> None:
        if not runs():
            return
        for hook in reversed(hooks):
            hook(error)

    return grouped_teardown_request


@contextlib.contextmanager
def hooks_only_when(app: Flask, runs: Predicate) -> Iterator[None]:
    """App-wide request hooks registered inside this block run only for requests where `runs()`.

    They are replaced by one hook of each kind that runs them in Flask's order, so a request they
    are not for pays one check, not one call per hook. Hooks registered earlier keep their place
    before the group.
    """
    kinds = (
        (app.before_request_funcs, _before_group),
        (app.after_request_funcs, _after_group),
        (app.teardown_request_funcs, _teardown_group),
    )
    known = [set(map(id, funcs.get(None, []))) for funcs, _ in kinds]
    yield
    for (funcs, group), before in zip(kinds, known, strict=True):
        hooks = funcs.get(None, [])
        added = [hook for hook in hooks if id(hook) not in before]
        if not added:
            continue
        kept = [hook for hook in hooks if id(hook) in before]
        funcs[None] = [*kept, group([app.ensure_sync(hook) for hook in added], runs)]


def is_portal_request() -> bool:
    """Whether the current request is for the portal's pages (not lean)."""
    return not is_lean_request()


def is_api_request() -> bool:
    """Whether the current request is under /api/v1 (not /healthz)."""
    return is_lean_request() and request.path != "/healthz"


def portal_only_hooks(app: Flask) -> contextlib.AbstractContextManager[None]:
    """Hooks registered inside the block do not run for the API and /healthz."""
    return hooks_only_when(app, is_portal_request)


def api_only_hooks(app: Flask) -> contextlib.AbstractContextManager[None]:
    """Hooks registered inside the block run only for /api/v1 requests."""
    return hooks_only_when(app, is_api_request)


def init_app(app: Flask) -> None:
    """Use the session interface that leaves lean requests alone."""
    app.session_interface = PortalSessionInterface()
