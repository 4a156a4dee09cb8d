"""Lean requests: the API and /healthz skip what only the portal's pages need.

The API authenticates by key and never reads the session cookie; /healthz answers without
anything. So for them: no session is opened or saved, and the hooks of the portal's extensions
(CSRF, Flask-Limiter's request hook, which only guards sign-in and registration) do not run.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from flask import Flask, Request, Response, request
from flask.app import _sentinel  # type: ignore[attr-defined]
from flask.globals import _cv_request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.signals import request_tearing_down

# Kept in step with the API blueprint's url_prefix (tests/scale/test_floor.py checks it).
API_PREFIX = "/api/v1"
LEAN_PATHS = frozenset({API_PREFIX, "/healthz"})
ENVIRON_FLAG = "portal.lean"
# Production answers, pages and JSON alike (and /healthz in front of Flask), ask for HTTPS only.
HSTS = "max-age=63072000; includeSubDomains"


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


def append_headers(response: Response, pairs: Iterable[tuple[str, str]]) -> None:
    """Append headers whose names and values the app wrote itself (constants, numbers, ids).

    werkzeug's `Headers.extend` checks every value for newlines one call at a time; these cannot
    hold one, so they go straight onto the header list. Anything from the request still goes
    through `Headers`.
    """
    response.headers._list.extend(pairs)  # noqa: SLF001 - werkzeug's list of (name, value)


def header_names(response: Response) -> set[str]:
    """The lower-cased names of the response's headers, in one pass."""
    return {name.lower() for name, _ in response.headers._list}  # noqa: SLF001


# Hook groups that never run for lean requests: `PortalFlask` does not even call them.
PORTAL_ONLY_ATTRIBUTE = "portal_only_hooks"


def _mark(group: Callable[..., Any], runs: Predicate) -> Callable[..., Any]:
    if runs is is_portal_request:
        setattr(group, PORTAL_ONLY_ATTRIBUTE, True)
    return group


def _before_group(hooks: list[Callable[..., Any]], runs: Predicate) -> Callable[[], Any]:
    def grouped_before_request() -> Any:
        if not runs():
            return None
        for hook in hooks:
            answer = hook()
            if answer is not None:
                return answer
        return None

    return _mark(grouped_before_request, runs)


def _after_group(
    hooks: list[Callable[..., Any]], runs: Predicate
) -> Callable[[Response], Response]:
    def grouped_after_request(response: Response) -> Response:
        if not runs():
            return response
        for hook in reversed(hooks):  # Flask runs after-request hooks last registered first
            response = hook(response)
        return response

    return _mark(grouped_after_request, runs)


def _teardown_group(
    hooks: list[Callable[..., Any]], runs: Predicate
) -> Callable[[BaseException | None], None]:
    def grouped_teardown_request(error: BaseException | None = None) -> None:
        if not runs():
            return
        for hook in reversed(hooks):
            hook(error)

    return _mark(grouped_teardown_request, runs)


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


class PortalFlask(Flask):
    """Flask, dispatching lean requests past the hook groups that are only for the portal.

    For a lean request (decided once, when its session is opened) the request hooks run as
    Flask runs them, in the same order, except the groups `portal_only_hooks` made, which are
    not called at all; and a hook known to be a plain function is called without asking again
    whether it is a coroutine (`ensure_sync` inspects each hook on every request).
    """

    _plain_hooks: dict[Any, bool]

    def _run_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        plain = self.__dict__.setdefault("_plain_hooks", {})
        known = plain.get(func)
        if known is None:
            known = plain[func] = self.ensure_sync(func) is func
        return func if known else self.ensure_sync(func)

    def preprocess_request(self) -> Any:
        """See Flask; lean requests skip the portal's hook groups."""
        req = _cv_request.get().request
        if not req.environ.get(ENVIRON_FLAG):
            return super().preprocess_request()
        names = (None, *reversed(req.blueprints))
        for name in names:
            for url_func in self.url_value_preprocessors.get(name, ()):
                url_func(req.endpoint, req.view_args)
        for name in names:
            for func in self.before_request_funcs.get(name, ()):
                if getattr(func, PORTAL_ONLY_ATTRIBUTE, False):
                    continue
                answer = self._run_sync(func)()
                if answer is not None:
                    return answer
        return None

    def process_response(self, response: Response) -> Response:
        """See Flask; lean requests skip the portal's hook groups and never save a session."""
        ctx = _cv_request.get()
        if not ctx.request.environ.get(ENVIRON_FLAG):
            return super().process_response(response)
        for func in ctx._after_request_functions:
            response = self.ensure_sync(func)(response)
        for name in chain(ctx.request.blueprints, (None,)):
            for func in reversed(self.after_request_funcs.get(name, ())):
                if getattr(func, PORTAL_ONLY_ATTRIBUTE, False):
                    continue
                response = self._run_sync(func)(response)
        return response  # PortalSessionInterface never saves a lean request's session

    def do_teardown_request(self, exc: BaseException | None = _sentinel) -> None:  # type: ignore[assignment]
        """See Flask; lean requests skip the portal's hook groups."""
        ctx = _cv_request.get(None)
        if ctx is None or not ctx.request.environ.get(ENVIRON_FLAG):
            super().do_teardown_request(exc)
            return
        if exc is _sentinel:
            exc = sys.exc_info()[1]
        for name in chain(ctx.request.blueprints, (None,)):
            for func in reversed(self.teardown_request_funcs.get(name, ())):
                if getattr(func, PORTAL_ONLY_ATTRIBUTE, False):
                    continue
                self._run_sync(func)(exc)
        request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)


def init_app(app: Flask) -> None:
    """Use the session interface that leaves lean requests alone."""
    app.session_interface = PortalSessionInterface()
