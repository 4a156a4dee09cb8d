"""Register, sign in and out, and markets."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    request,
    session,
    url_for,
)

from portal.accounts import service
from portal.accounts.forms import LoginForm, MarketForm, RegisterForm
from portal.extensions import limiter
from portal.htmx import full_redirect, render_page_or_block, see_other
from portal.web import login_required, safe_next

bp = Blueprint("accounts", __name__)


def _start_session(user_id: int, epoch: int) -> None:
    """A fresh session for the user (never reuse the anonymous one)."""
    session.clear()
    session["user_id"] = user_id
    session["epoch"] = epoch
    session.permanent = False


def _login_account_key() -> str:
    """Limit sign-in attempts per account, whatever the IP."""
    return "login:" + service.normalize_email(request.form.get("email", ""))


@bp.route("/auth/register", methods=["GET", "POST"])
def register() -> Response:
    """Create a store and sign in."""
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = service.register(
                service.NewAccount(form.email.data, form.password.data, form.store_name.data)
            )
        except service.AccountError as error:
            form[error.field].errors.append(error.message)
        else:
            _start_session(user.id, user.session_epoch)
            flash(f"Welcome, {user.merchant.name}. Create your first API key.", "success")
            return full_redirect(url_for("keys.list_keys"))
    status = 422 if form.errors else 200
    return render_page_or_block("accounts/register.html", "main", status, form=form)


@bp.route("/auth/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_login_account_key,
    methods=["POST"],
)
def login() -> Response:
    """Sign in with email and password."""
    form = LoginForm()
    if form.validate_on_submit():
        user = service.authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("The email or password is not right.")
        else:
            _start_session(user.id, user.session_epoch)
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


@bp.route("/settings/markets", methods=["GET", "POST"])
@login_required
def markets() -> Response:
    """The merchant's markets, and a form to add one."""
    form = MarketForm()
    if form.validate_on_submit():
        try:
            market = service.add_market(g.merchant.id, form.code.data, form.name.data)
        except service.AccountError as error:
            form[error.field].errors.append(error.message)
        else:
            flash(f"Market {market.code} added.", "success")
            return see_other(url_for("accounts.markets"), _render_markets)
    status = 422 if form.errors else 200
    return _render_markets(form, status)


def _render_markets(form: MarketForm | None = None, status: int = 200) -> Response:
    """The markets page (or its main block for htmx)."""
    from portal.keys.service import count_keys_by_market

    return render_page_or_block(
        "accounts/markets.html",
        "main",
        status,
        form=form or MarketForm(formdata=None),
        markets=service.list_markets(g.merchant.id),
        key_counts=count_keys_by_market(g.merchant.id),
    )


def market_or_404(market_id: int):  # noqa: ANN201 - returns a Market
    """The signed-in merchant's market, or 404."""
    market = service.get_market(g.merchant.id, market_id)
    if market is None:
        abort(404)
    return market
