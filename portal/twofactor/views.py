"""Two-factor pages: set-up and management (/account/two-factor), the code step of signing in
(/auth/two-factor), and the store's requirement, which sends members without it to set-up."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    request,
    session,
    url_for,
)

from portal.accounts import attempts
from portal.accounts.access import (
    PENDING_SIGN_IN,
    drop_pending_sign_in,
    login_required,
    pending_sign_in,
    safe_next,
    start_session,
)
from portal.accounts.permissions import SESSION_STORE, can, note_password_entered
from portal.extensions import limiter
from portal.htmx import full_redirect, render_page_or_block, see_other
from portal.twofactor import service, totp
from portal.twofactor.forms import ButtonForm, CodeForm, ConfirmForm, RequirementForm

bp = Blueprint("twofactor", __name__)
SETUP_SECRET = "two_factor_setup"  # noqa: S105 - session: the secret shown, until confirmed
FAILURES = "TWO_FACTOR_FAILURES_PER_SIGN_IN"
USER_FAILURES = "TWO_FACTOR_FAILURES_PER_USER"
# What a member of a store that requires two factors may still reach without them.
OPEN_WITHOUT_TWO_FACTOR = frozenset(
    {
        "static",
        "twofactor.setup",
        "twofactor.challenge",
        "accounts.logout",
        "members.switch_store",
        "members.accept",
        "accounts.check_inbox",
        "accounts.confirm_email",  # the sign-up mail's link confirms the address whatever else
        "accounts.resend_confirmation",
    }
)


@bp.before_app_request
def send_to_two_factor_setup() -> Response | None:
    """In a store that requires two factors, a member without them sets them up first."""
    membership = g.get("membership")
    if membership is None or g.user.two_factor_enabled:
        return None
    if not membership.merchant.require_two_factor or request.endpoint in OPEN_WITHOUT_TWO_FACTOR:
        return None
    if request.endpoint is None or request.blueprint == "api":
        return None
    setup = url_for("twofactor.setup")
    if request.headers.get("HX-Request") == "true":
        return full_redirect(setup)
    return redirect(setup, code=303 if request.method == "POST" else 302)


def _setup_secret() -> str:
    """The secret offered on the set-up page: the same until it is confirmed (reloads, tabs)."""
    secret = session.get(SETUP_SECRET)
    if not isinstance(secret, str) or len(secret) != 32:
        secret = totp.new_secret()
        session[SETUP_SECRET] = secret
    return secret


def _render(
    status: int = 200,
    confirm_form: ConfirmForm | None = None,
    requirement_error: str | None = None,
    disable_error: str | None = None,
) -> Response:
    """The two-factor page: set-up while it is off, its state and controls once it is on."""
    user = g.user
    context: dict[str, object] = {
        "enabled": user.two_factor_enabled,
        "required_by": service.stores_requiring(user),
        "store": g.merchant,
        "button_form": ButtonForm(formdata=None),
        "requirement_form": RequirementForm(formdata=None),
        "requirement_error": requirement_error,
        "disable_error": disable_error,
        "can_require": can("security:write"),
    }
    if user.two_factor_enabled:
        context["codes_left"] = service.recovery_codes_left(user)
    else:
        secret = _setup_secret()
        context.update(
            confirm_form=confirm_form or ConfirmForm(formdata=None),
            secret=totp.grouped(secret),
            qr=totp.qr_svg(
                totp.provisioning_uri(secret, user.email),
                "QR code to add this account to an authenticator app",
            ),
        )
    response = render_page_or_block("twofactor/setup.html", "main", status, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _show_codes(codes: list[str], heading: str) -> Response:
    """The recovery codes, shown this once (the POST's own answer: a reload shows nothing)."""
    response = render_page_or_block(
        "twofactor/recovery_codes.html", "main", 200, codes=codes, heading=heading
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def setup() -> Response:
    """Set up two-factor sign-in (scan, confirm with a code), or manage it once it is on."""
    form = ConfirmForm()
    if request.method == "POST" and g.user.two_factor_enabled:
        flash("Two-factor sign-in is already on.", "success")
        return see_other(url_for("twofactor.setup"), _render)
    if form.validate_on_submit():
        try:
            codes = service.enable(g.user, _setup_secret(), form.code.data, request.remote_addr)
        except service.TwoFactorError as error:
            form[error.field].errors.append(error.message)
        else:
            session.pop(SETUP_SECRET, None)
            session["epoch"] = g.user.session_epoch  # this session goes on; the others end
            return _show_codes(codes, "Two-factor sign-in is on")
    return _render(422 if form.errors else 200, confirm_form=form)


@bp.route("/account/two-factor/recovery-codes", methods=["POST"])
@login_required
def regenerate() -> Response:
    """New recovery codes (after the password): the old ones stop working."""
    if ButtonForm().validate_on_submit():
        try:
            codes = service.regenerate_recovery_codes(g.user, request.remote_addr)
        except service.TwoFactorError as error:
            flash(error.message, "error")
        else:
            return _show_codes(codes, "New recovery codes")
    return see_other(url_for("twofactor.setup"), _render)


@bp.route("/account/two-factor/disable", methods=["POST"])
@login_required
def disable() -> Response:
    """Turn two-factor sign-in off (after the password; not while a store requires it)."""
    if ButtonForm().validate_on_submit():
        try:
            service.disable(g.user, request.remote_addr)
        except service.TwoFactorError as error:
            return _render(422, disable_error=error.message)
        flash("Two-factor sign-in is off. Your recovery codes no longer work.", "success")
    return see_other(url_for("twofactor.setup"), _render)


@bp.route("/account/two-factor/require", methods=["POST"])
@login_required
def require() -> Response:
    """Require two-factor sign-in of every member of this store, or stop (owners only)."""
    form = RequirementForm()
    if not form.validate_on_submit():
        return _render(422, requirement_error="Choose to require it or not.")
    required = form.required.data == "on"
    try:
        changed = service.set_requirement(g.membership, required, request.remote_addr)
    except service.TwoFactorError as error:
        return _render(422, requirement_error=error.message)
    if changed:
        flash(
            f"Every member of {g.merchant.name} now signs in with two factors."
            if required
            else f"Members of {g.merchant.name} may sign in without two factors.",
            "success",
        )
    return see_other(url_for("twofactor.setup"), _render)


def _pending_user_and_address_key() -> str:
    """Limit the code step per (user signing in, client address), like sign-in per account."""
    pending = session.get(PENDING_SIGN_IN)
    user_id = pending.get("user_id") if isinstance(pending, dict) else None
    return f"two-factor:{user_id}:{request.remote_addr}"


def _back_to_sign_in(message: str) -> Response:
    """Drop the pending sign-in: the password again."""
    drop_pending_sign_in()
    flash(message, "error")
    return full_redirect(url_for("accounts.login"))


def _too_many_for_the_account(form: CodeForm, email: str, wait: int) -> Response:
    """429: too many wrong codes for this account from anywhere; no code is checked."""
    minutes = max(1, -(-wait // 60))
    form.code.errors = [
        f"Too many wrong codes for this account. Wait {minutes} minute"
        f"{'s' if minutes > 1 else ''} and try again."
    ]
    response = render_page_or_block("twofactor/challenge.html", "main", 429, form=form, email=email)
    response.headers["Retry-After"] = str(wait)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/auth/two-factor", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["TWO_FACTOR_LIMIT_PER_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["TWO_FACTOR_LIMIT_PER_ACCOUNT"],
    key_func=_pending_user_and_address_key,
    methods=["POST"],
)
def challenge() -> Response:
    """The code step of signing in: after the right password, a code from the app (or a
    recovery code) before the session is signed in."""
    if g.user is not None:
        return redirect(url_for("keys.list_keys"))
    pending = pending_sign_in()
    if pending is None:
        if PENDING_SIGN_IN in session:
            return _back_to_sign_in("Your sign-in took longer than 5 minutes. Sign in again.")
        return full_redirect(url_for("accounts.login"))
    if attempts.used_up(FAILURES, "two-factor-sign-in", pending.id):
        return _back_to_sign_in("Too many wrong codes. Sign in with your password again.")
    form = CodeForm()
    if request.method == "POST":
        wait = attempts.used_up(USER_FAILURES, "two-factor-user", pending.user.id)
        if wait is not None:
            return _too_many_for_the_account(form, pending.user.email, wait)
    if form.validate_on_submit():
        try:
            result = service.verify_sign_in(pending.user, form.code.data, request.remote_addr)
        except service.TwoFactorError as error:
            attempts.fail(FAILURES, "two-factor-sign-in", pending.id)
            attempts.fail(USER_FAILURES, "two-factor-user", pending.user.id)
            if attempts.used_up(FAILURES, "two-factor-sign-in", pending.id):
                return _back_to_sign_in("Too many wrong codes. Sign in with your password again.")
            form.code.errors.append(error.message)
        else:
            user = pending.user
            start_session(user.id, user.session_epoch)
            note_password_entered()
            if pending.merchant_id is not None:
                session[SESSION_STORE] = pending.merchant_id
            if result.recovery:
                flash(
                    f"You signed in with a recovery code; it will not work again. "
                    f"{result.recovery_codes_left} left: make new ones on the two-factor page "
                    "if you are running out.",
                    "success",
                )
            return full_redirect(safe_next(pending.next, url_for("keys.list_keys")))
    response = render_page_or_block(
        "twofactor/challenge.html",
        "main",
        422 if form.errors else 200,
        form=form,
        email=pending.user.email,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
