"""Register, sign in and sign out."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, request, session, url_for

from portal.accounts import service
from portal.accounts.access import (
    begin_pending_sign_in,
    load_signed_in_user,
    login_required,
    safe_next,
    start_session,
)
from portal.accounts.forms import LoginForm, RegisterForm
from portal.accounts.permissions import (
    can,
    enforce_role,
    load_membership,
    note_password_entered,
)
from portal.extensions import limiter
from portal.htmx import full_redirect, render_page_or_block

bp = Blueprint("accounts", __name__)
SIGNED_UP_EMAIL = "signed_up_email"  # the session's last sign-up address, for the inbox page
bp.before_app_request(load_signed_in_user)
bp.before_app_request(load_membership)
bp.before_app_request(enforce_role)


@bp.app_context_processor
def role_helpers() -> dict[str, object]:
    """`can("keys:write")` in every template: show only what the member's role may use."""
    return {"can": can}


def _login_account_and_address_key() -> str:
    """Limit sign-in attempts per account and client address.

    Not per account alone: then anyone could lock an owner out with wrong passwords from
    anywhere. Guessing from many addresses meets the per-address limit of each.
    """
    email = service.normalize_email(request.form.get("email", ""))
    return f"login:{email}:{request.remote_addr}"


@bp.route("/auth/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["REGISTER_LIMIT_PER_IP"], methods=["POST"])
def register() -> Response:
    """Sign up: the same answer for a new email and a registered one (the mail tells them)."""
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            service.sign_up(
                service.NewAccount(form.email.data, form.password.data, form.store_name.data)
            )
        except service.AccountError as error:
            form[error.field].errors.append(error.message)
        else:
            session[SIGNED_UP_EMAIL] = service.normalize_email(form.email.data)
            return full_redirect(url_for("accounts.check_inbox"))
    status = 422 if form.errors else 200
    return render_page_or_block("accounts/register.html", "main", status, form=form)


@bp.route("/auth/check-inbox")
def check_inbox() -> Response:
    """After sign-up: look for our mail (it says what happens next, whoever you are)."""
    return render_page_or_block(
        "accounts/check_inbox.html", "main", email=session.get(SIGNED_UP_EMAIL)
    )


@bp.route("/auth/confirm")
def confirm_email() -> Response:
    """The link in the sign-up mail: the email is confirmed, and keys can be created."""
    user = service.confirm_email(request.args.get("token", ""))
    if user is None:
        return render_page_or_block(
            "errors/error.html",
            "main",
            400,
            title="This link does not work",
            message="It has expired or is not a link we sent. Sign in and ask for a new one.",
        )
    flash(
        f"Welcome, {user.merchant.name}. Your email is confirmed: create your first API key.",
        "success",
    )
    if g.user is not None and g.user.id == user.id:
        return full_redirect(url_for("keys.list_keys"))
    return full_redirect(url_for("accounts.login", next=url_for("keys.list_keys")))


@bp.route("/auth/confirm/resend", methods=["POST"])
@login_required
def resend_confirmation() -> Response:
    """Mail a new confirmation link to the signed-in person."""
    if g.user.email_confirmed:
        flash("Your email is already confirmed.", "success")
    elif service.resend_confirmation(g.user):
        flash(f"We sent a new link to {g.user.email}. It is valid for 3 days.", "success")
    else:
        flash("We sent links to this address recently: look for them, or try in an hour.", "error")
    return full_redirect(url_for("keys.list_keys"))


@bp.route("/auth/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_login_account_and_address_key,
    methods=["POST"],
)
def login() -> Response:
    """Sign in with email and password."""
    form = LoginForm()
    if form.validate_on_submit():
        user = service.authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("The email or password is not right.")
        elif user.two_factor_enabled:
            # Not signed in yet: the code step comes first (portal.twofactor).
            begin_pending_sign_in(user, request.args.get("next"))
            return full_redirect(url_for("twofactor.challenge"))
        else:
            start_session(user.id, user.session_epoch)
            note_password_entered()
            return full_redirect(safe_next(request.args.get("next"), url_for("keys.list_keys")))
    status = 422 if form.errors else 200
    return render_page_or_block("accounts/login.html", "main", status, form=form)


@bp.route("/auth/logout", methods=["POST"])
def logout() -> Response:
    """Sign out: this session and any copy of its cookie stop working."""
    if g.user is not None:
        service.end_sessions(g.user)
    session.clear()
    flash("You are signed out.", "success")
    return full_redirect(url_for("accounts.login"))
