"""The keys pages: list, create and reveal, inspect, edit, rotate, revoke, audit log, markets."""

from __future__ import annotations

from flask import Blueprint, Response, flash, g, request, url_for

from portal.accounts.access import login_required, market_or_404
from portal.accounts.forms import MarketForm
from portal.accounts.service import AccountError, add_market, get_market, list_markets
from portal.htmx import is_partial, render_page_or_block, see_other
from portal.keys import scopes, service
from portal.keys.access import key_or_404
from portal.keys.forms import (
    ConfirmForm,
    KeySettingsForm,
    NewKeyForm,
    RotateForm,
    default_scopes,
    is_key_type,
)
from portal.keys.models import ApiKey
from portal.routing import id_arg
from portal.usage.panel import key_usage_context

bp = Blueprint("keys", __name__, url_prefix="/settings")


def _actor() -> service.Actor:
    """The signed-in user, for the audit log."""
    return service.Actor(name=g.user.email, user_id=g.user.id, ip=request.remote_addr)


def _no_store(response: Response) -> Response:
    """Keep a page that shows a key out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _int_arg(name: str) -> int | None:
    """An integer query parameter, or None."""
    return id_arg(request.args.get(name))


@bp.route("/api-keys")
@login_required
def list_keys() -> Response:
    """All keys, filtered by type, state and market."""
    return _render_list(market=None)


@bp.route("/markets/<int:market_id>/api-keys")
@login_required
def market_keys(market_id: int) -> Response:
    """The keys of one market."""
    market = market_or_404(market_id)
    return _render_list(market=market)


def _render_list(market) -> Response:  # noqa: ANN001 - Market | None
    """The key list page, or the list alone when htmx asks for it."""
    filters = {
        "type": request.args.get("type") if is_key_type(request.args.get("type")) else None,
        "state": request.args.get("state")
        if request.args.get("state") in service.states()
        else None,
        "market": market.id if market else _int_arg("market"),
    }
    if (
        filters["market"] is not None
        and market is None
        and get_market(g.merchant.id, filters["market"]) is None
    ):
        filters["market"] = None
    keys = service.list_keys(g.merchant.id, filters["type"], filters["state"], filters["market"])
    return render_page_or_block(
        "keys/list.html",
        "key_list",
        keys=keys,
        filters=filters,
        market=market,
        markets=list_markets(g.merchant.id),
        states=service.states(),
        expiring_soon=service.expiring_soon,
    )


def _new_key_form() -> NewKeyForm:
    """The create form, from the posted data or with the SPEC's defaults."""
    if request.method == "POST":
        form = NewKeyForm()
    elif request.args.get("key_type") and "label" in request.args:
        # The type changed (htmx): keep what was typed, start from that type's default scopes.
        form = NewKeyForm(formdata=request.args)
        form.scopes.data = default_scopes(form.key_type.data)
    else:
        key_type = request.args.get("key_type", "publishable")
        key_type = key_type if is_key_type(key_type) else "publishable"
        form = NewKeyForm(formdata=None, key_type=key_type, scopes=default_scopes(key_type))
    form.set_markets(list_markets(g.merchant.id))
    return form


@bp.route("/api-keys/new", methods=["GET", "POST"])
@login_required
def new_key() -> Response:
    """The create form; a valid post creates the key and shows it once."""
    form = _new_key_form()
    if request.method == "POST" and _adds_a_row(form):
        return _render_new(form)
    if form.is_submitted():
        parsed = form.validate()
        try:
            if not parsed:
                service.validate_settings(g.merchant.id, form.key_type.data, form.to_settings())
            else:
                key, token = service.create_key(
                    g.merchant.id, form.key_type.data, form.to_settings(), _actor()
                )
                return _render_reveal(key, token, "created")
        except service.KeyInvalid as error:
            form.add_service_errors(error.errors)
    if request.method == "GET" and is_partial() and "label" in request.args:
        return render_page_or_block("keys/new.html", "key_form", form=form, scopes=scopes)
    return _render_new(form, 422 if form.has_errors() else 200)


def _adds_a_row(form: KeySettingsForm) -> bool:
    """Handle the 'Add origin' and 'Add IP range' buttons (they post the form without saving)."""
    target = {"origin": form.allowed_origins, "ip_range": form.allowed_ip_ranges}.get(
        request.form.get("add", "")
    )
    if target is None:
        return False
    if len(target.entries) < target.max_entries:
        target.append_entry()
    return True


def _render_new(form: NewKeyForm, status: int = 200) -> Response:
    """The create page, or its form for htmx."""
    return render_page_or_block("keys/new.html", "main", status, form=form, scopes=scopes)


def _render_reveal(key: ApiKey, token: str, event: str) -> Response:
    """Show a new key once, in a dialog; never cached."""
    response = render_page_or_block("keys/reveal.html", "main", key=key, token=token, event=event)
    if is_partial():
        response.headers["HX-Push-Url"] = url_for("keys.show_key", key_id=key.id)
    return _no_store(response)


@bp.route("/api-keys/<int:key_id>")
@login_required
def show_key(key_id: int) -> Response:
    """Everything about one key."""
    key = key_or_404(key_id)
    return _render_key(key)


def _render_key(key: ApiKey) -> Response:
    """The key page (a publishable key's token may be on it, so never cached)."""
    events = service.audit_events(g.merchant.id, key_id=key.id, limit=100)
    return _no_store(
        render_page_or_block(
            "keys/show.html",
            "main",
            key=key,
            events=events,
            rotated_from=service.rotated_from(key),
            used_from_browser=any(event.action == "secret_key_in_browser" for event in events),
            scopes=scopes,
            expiring_soon=service.expiring_soon(key),
            grace_labels=service.GRACE_LABELS,
            **key_usage_context(key),
        )
    )


@bp.route("/api-keys/<int:key_id>/edit", methods=["GET", "POST"])
@login_required
def edit_key(key_id: int) -> Response:
    """Change a key's settings; the key itself stays the same."""
    key = key_or_404(key_id)
    if request.method == "POST":
        form = KeySettingsForm()
    else:
        settings = service.settings_of(key)
        form = KeySettingsForm(formdata=None, obj=settings)
        if not settings.allowed_origins:
            form.allowed_origins.append_entry()
        if not settings.allowed_ip_ranges:
            form.allowed_ip_ranges.append_entry()
    form.set_markets(list_markets(g.merchant.id))
    if request.method == "POST" and _adds_a_row(form):
        return _render_edit(key, form)
    if form.is_submitted():
        parsed = form.validate()
        try:
            if not parsed:
                service.validate_settings(g.merchant.id, key.key_type, form.to_settings())
            else:
                service.update_key(key, form.to_settings(), _actor())
                flash("Key updated. The key itself did not change.", "success")
                return see_other(url_for("keys.show_key", key_id=key.id), lambda: _render_key(key))
        except service.KeyInvalid as error:
            form.add_service_errors(error.errors)
        except service.KeyNotActive as error:
            form.label.errors = [*form.label.errors, str(error)]
    return _render_edit(key, form, 422 if form.has_errors() else 200)


def _render_edit(key: ApiKey, form: KeySettingsForm, status: int = 200) -> Response:
    """The edit page, or its main block for htmx."""
    return render_page_or_block("keys/edit.html", "main", status, key=key, form=form, scopes=scopes)


@bp.route("/api-keys/<int:key_id>/rotate", methods=["GET", "POST"])
@login_required
def rotate_key(key_id: int) -> Response:
    """Confirm, then replace the key; the old one stops now or after a grace period."""
    key = key_or_404(key_id)
    form = RotateForm()
    if form.validate_on_submit():
        try:
            new_key, token = service.rotate_key(key, form.grace.data, _actor())
        except service.KeyInvalid as error:
            form.grace.errors = [*form.grace.errors, *error.errors["grace"]]
        except service.KeyNotActive as error:
            form.grace.errors = [*form.grace.errors, str(error)]
        else:
            return _render_reveal(new_key, token, "rotated")
    return render_page_or_block(
        "keys/rotate.html", "main", 422 if form.errors else 200, key=key, form=form
    )


@bp.route("/api-keys/<int:key_id>/revoke", methods=["GET", "POST"])
@login_required
def revoke_key(key_id: int) -> Response:
    """Confirm, then stop the key at once and for good."""
    key = key_or_404(key_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            service.revoke_key(key, _actor())
        except service.KeyNotActive as error:
            flash(str(error), "error")
        else:
            flash(f"“{key.label}” is revoked. Requests with it now fail.", "success")
        return see_other(url_for("keys.show_key", key_id=key.id), lambda: _render_key(key))
    return render_page_or_block("keys/revoke.html", "main", key=key, form=form)


@bp.route("/audit")
@login_required
def audit_log() -> Response:
    """The merchant's audit log, newest first, 50 at a time."""
    before = _int_arg("before")
    events = service.audit_events(g.merchant.id, limit=51, before_id=before)
    return render_page_or_block(
        "keys/audit.html",
        "main",
        events=events[:50],
        next_before=events[49].id if len(events) > 50 else None,
    )


@bp.route("/markets", methods=["GET", "POST"])
@login_required
def markets() -> Response:
    """The merchant's markets with their key counts, and a form to add one."""
    form = MarketForm()
    if form.validate_on_submit():
        try:
            market = add_market(g.merchant.id, form.code.data, form.name.data)
        except AccountError as error:
            form[error.field].errors.append(error.message)
        else:
            flash(f"Market {market.code} added.", "success")
            return see_other(url_for("keys.markets"), _render_markets)
    status = 422 if form.errors else 200
    return _render_markets(form, status)


def _render_markets(form: MarketForm | None = None, status: int = 200) -> Response:
    """The markets page (or its main block for htmx)."""
    return render_page_or_block(
        "accounts/markets.html",
        "main",
        status,
        form=form or MarketForm(formdata=None),
        markets=list_markets(g.merchant.id),
        key_counts=service.count_keys_by_market(g.merchant.id),
    )
