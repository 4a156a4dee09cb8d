"""Who is signed in: the session's user on `g`, `login_required`, and where to go after sign-in."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for
from werkzeug.urls import iri_to_uri

from portal.accounts import permissions, service
from portal.accounts.models import Market, User
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


PENDING_SIGN_IN = "pending_sign_in"
PENDING_SIGN_IN_SECONDS = 5 * 60


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in whose password was right, waiting for its second factor (not signed in yet)."""

    user: User
    id: str  # names this sign-in's count of wrong codes in the limiter storage
    next: str | None
    merchant_id: int | None


def begin_pending_sign_in(user: User, next_url: str | None, merchant_id: int | None = None) -> None:
    """After the right password of a member with two-factor sign-in: a fresh session that holds
    who is signing in, for 5 minutes, and nothing that signs them in."""
    session.clear()
    session[PENDING_SIGN_IN] = {
        "user_id": user.id,
        "epoch": user.session_epoch,
        "at": permissions.now(),
        "id": secrets.token_urlsafe(16),
        "next": next_url,
        "merchant_id": merchant_id,
    }
    session.permanent = False


def pending_sign_in() -> PendingSignIn | None:
    """The session's pending sign-in, if it is recent and its user still needs the code step."""
    pending = session.get(PENDING_SIGN_IN)
    if not isinstance(pending, dict):
        return None
    started = pending.get("at")
    if not isinstance(started, int | float) or not (
        0 <= permissions.now() - started <= PENDING_SIGN_IN_SECONDS
    ):
        return None
    user_id = pending.get("user_id")
    user = (
        service.signed_in_user(user_id, pending.get("epoch")) if isinstance(user_id, int) else None
    )
    if user is None or not user.two_factor_enabled:
        return None
    return PendingSignIn(
        user=user,
        id=str(pending.get("id")),
        next=pending.get("next"),
        merchant_id=pending.get("merchant_id"),
    )


def drop_pending_sign_in() -> None:
    """Forget the pending sign-in: the password must be entered again."""
    session.pop(PENDING_SIGN_IN, None)


def login_required(view: View) -> View:
    """Send anonymous visitors to the sign-in page, remembering where they were going."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            if pending_sign_in() is not None:
                # The password was right and the code step still waits: go back to it.
                login = url_for("twofactor.challenge")
            else:
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
