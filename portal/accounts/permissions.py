"""The signed-in member's store and role on `g`, and the role check before every portal page."""

from __future__ import annotations

import time

from flask import Response, abort, g, request, session

from portal.accounts.models import Membership
from portal.accounts.roles import CONFIRMED_EMAIL_ENDPOINTS, ENDPOINT_ACCESS, allows
from portal.htmx import render_page_or_block

SESSION_STORE = "merchant_id"  # the store the session works in (a user may belong to several)
PASSWORD_AT = "password_at"  # noqa: S105 - session: when the password was last entered
RECENT_PASSWORD_SECONDS = 10 * 60


def now() -> float:
    """The current time in Unix seconds (tests replace it to move the clock)."""
    return time.time()


def note_password_entered() -> None:
    """Remember in the session that the password was just entered (sign-in, re-auth)."""
    session[PASSWORD_AT] = now()


def password_is_recent() -> bool:
    """Whether the password was entered in this session in the last 10 minutes."""
    entered = session.get(PASSWORD_AT)
    return isinstance(entered, int | float) and 0 <= now() - entered <= RECENT_PASSWORD_SECONDS


def load_membership() -> None:
    """Put the member's role in the session's store on `g` (runs after the user is loaded)."""
    g.membership = None
    if g.get("user") is None:
        return
    memberships = g.user.memberships
    chosen = session.get(SESSION_STORE, g.user.merchant_id)
    membership = next((m for m in memberships if m.merchant_id == chosen), None)
    if membership is None and memberships:
        membership = memberships[0]  # removed from the chosen store: another of theirs
    if membership is None:
        # A member of no store any more: the session ends here.
        session.clear()
        g.user = None
        g.merchant = None
        return
    g.membership = membership
    g.merchant = membership.merchant


def current_membership() -> Membership | None:
    """The signed-in member's membership in the session's store, if any."""
    return g.get("membership")


def can(permission: str) -> bool:
    """Whether the signed-in member's role holds `permission` (templates call this too)."""
    membership = current_membership()
    return membership is not None and allows(membership.role, permission)


def enforce_role() -> Response | None:
    """Refuse (403) a signed-in request whose role lacks the endpoint's permission."""
    if g.get("user") is None or request.endpoint is None or request.blueprint == "api":
        return None  # visitors meet login_required; the API authenticates by key
    access = ENDPOINT_ACCESS.get(request.endpoint)
    if access is None:
        abort(403)  # a page nobody said who may use: closed until it is listed
    permission = access.permission_for(request.method)
    if permission is not None and not can(permission):
        abort(403)
    if request.endpoint in CONFIRMED_EMAIL_ENDPOINTS and not g.user.email_confirmed:
        return render_page_or_block("accounts/confirm_first.html", "main", 403)
    return None
