"""Who is signed in: the session's user on `g`, `login_required`, and where to go after sign-in."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for
from werkzeug.urls import iri_to_uri

from portal.accounts import service
from portal.accounts.models import Market
from portal.htmx import full_redirect
from portal.lean import is_lean_request

View = TypeVar("View", bound=Callable[..., Any])


def load_signed_in_user() -> None:
    """Put the signed-in user and merchant on `g`, if the session is still valid."""
    g.user = None
    g.merchant = None
    if is_lean_request():
        return  # the API authenticates by key; its responses never depend on the session cookie
    user_id = session.get("user_id")
    if user_id is None:
        return
    user = service.signed_in_user(user_id, session.get("epoch"))
    if user is None:
        session.clear()
        return
    g.user = user
    g.merchant = user.merchant


def start_session(user_id: int, epoch: int) -> None:
    """A fresh session for the user (never reuse the anonymous one)."""
    session.clear()
    session["user_id"] = user_id
    session["epoch"] = epoch
    session.permanent = False


def login_required(view: View) -> View:
    """Send anonymous visitors to the sign-in page, remembering where they were going."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            login = url_for("accounts.login", next=request.full_path.rstrip("?"))
            if request.headers.get("HX-Request") == "true":
                # Following a redirect, htmx would swap the sign-in page into a fragment's place.
                return full_redirect(login)
            return redirect(login)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def safe_next(target: str | None, default: str) -> str:
    """A local path to go to after signing in; anything else (open redirects) becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    # Browsers drop tabs and newlines from URLs ("/\t/evil.com" is "//evil.com"), and a newline
    # in a Location header is a server error: refuse whitespace and control characters.
    if any(char.isspace() or not char.isprintable() for char in target):
        return default
    # Headers are Latin-1 (HX-Redirect, Location): "/café" travels as "/caf%C3%A9".
    return iri_to_uri(target)


def market_or_404(market_id: int) -> Market:
    """The signed-in merchant's market, or 404 (another merchant's market does not exist here)."""
    market = service.get_market(g.merchant.id, market_id)
    if market is None:
        abort(404)
    return market
