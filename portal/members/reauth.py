"""Re-authentication: sensitive actions ask for the password again when it was not entered in
the last 10 minutes, and then carry on with the same request.

The check runs before the view. A sensitive POST without a recent password answers with a
small page asking for it; that page's form posts back to the same URL with every field the
person had sent (as hidden inputs) plus the password, so nothing typed is lost, with or
without htmx. A right password is noted in the session and the original action goes ahead.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, g, request

from portal.accounts import attempts
from portal.accounts.passwords import verify_password
from portal.accounts.permissions import note_password_entered, password_is_recent
from portal.htmx import is_partial, render_page_or_block
from portal.keys import service as keys

PASSWORD_FIELD = "reauth_password"  # noqa: S105 - a form field's name
FAILURES = "REAUTH_FAILURES_PER_USER"
NOT_RESENT = {"csrf_token", PASSWORD_FIELD}


def _secret_key_in_url() -> bool:
    """Whether the URL names a secret key of the store (rotate, revoke)."""
    key_id = (request.view_args or {}).get("key_id")
    try:
        return keys.get_key(g.merchant.id, key_id).key_type == "secret"
    except keys.KeyNotFound:
        return False  # the view answers 404


def _creates_a_secret_key() -> bool:
    """Whether the create form is posted to make a secret key (not 'Add a row')."""
    return request.form.get("key_type") == "secret" and "add" not in request.form


def _always() -> bool:
    return True


# The SPEC's sensitive actions: the POSTs that need a recent password, and when.
SENSITIVE_POSTS: dict[str, Callable[[], bool]] = {
    "keys.new_key": _creates_a_secret_key,
    "keys.rotate_key": _secret_key_in_url,
    "keys.revoke_key": _secret_key_in_url,
    "webhooks.new_endpoint": _always,  # reveals a signing secret
    "webhooks.rotate_secret": _always,
    "settings.store": _always,
    "members.invite": _always,
    "members.change_role": _always,
    "members.remove": _always,
    "members.resend": _always,
    "members.revoke": _always,
    "twofactor.regenerate": _always,
    "twofactor.disable": _always,
    "twofactor.require": _always,
}


def require_recent_password() -> Response | None:
    """Before a sensitive POST: go on, check the password sent with it, or ask for it."""
    if g.get("membership") is None or request.method != "POST":
        return None
    needs = SENSITIVE_POSTS.get(request.endpoint or "")
    if needs is None or password_is_recent() or not needs():
        return None
    password = request.form.get(PASSWORD_FIELD)
    if password is not None:
        # Wrong passwords are limited per user (a stolen session must not guess the password).
        wait = attempts.used_up(FAILURES, "reauth", g.user.id)
        if wait is None:
            if verify_password(password, g.user.password_hash):
                note_password_entered()
                return None
            attempts.fail(FAILURES, "reauth", g.user.id)
            wait = attempts.used_up(FAILURES, "reauth", g.user.id)
            if wait is None:
                return _ask(error="The password is not right.")
        return _too_many(wait)
    return _ask()


def _too_many(wait: int) -> Response:
    """429: the password is not checked again until the wrong ones are forgotten."""
    minutes = max(1, -(-wait // 60))
    response = _ask(
        error=f"Too many wrong passwords. Wait {minutes} minute{'s' if minutes > 1 else ''} "
        "and try again; nothing was changed.",
        status=429,
    )
    response.headers["Retry-After"] = str(wait)
    return response


def _ask(error: str | None = None, status: int | None = None) -> Response:
    """The page asking for the password, carrying the request's fields to post them again."""
    fields = [
        (name, value) for name, value in request.form.items(multi=True) if name not in NOT_RESENT
    ]
    response = render_page_or_block(
        "members/reauth.html",
        "main",
        status or (422 if error else 401),
        action=request.full_path.rstrip("?"),
        fields=fields,
        error=error,
        password_field=PASSWORD_FIELD,
    )
    if is_partial():
        response.headers["HX-Retarget"] = "#main"
        response.headers["HX-Reswap"] = "innerHTML"
    response.headers["Cache-Control"] = "no-store"
    return response
