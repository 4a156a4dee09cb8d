"""The keys pages: list, create and reveal, inspect, edit, rotate, revoke, audit log, markets."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, abort, flash, g, redirect, request, session, url_for

from portal.accounts.access import login_required, market_or_404
from portal.accounts.forms import MarketForm, MarketNameForm
from portal.accounts.service import AccountError, add_market, get_market, list_markets
from portal.csv_export import csv_cell, csv_response
from portal.htmx import is_partial, render_page_or_block, see_other
from portal.keys import presets, scopes, service
from portal.keys.access import key_or_404
from portal.keys.forms import (
    ConfirmForm,
    KeySettingsForm,
    NewKeyForm,
    RotateForm,
    default_scopes,
    is_key_type,
)
from portal.keys.models import ApiKey, KeyReveal
from portal.relative_time import relative_time
from portal.routing import id_arg
from portal.usage.panel import key_usage_context

bp = Blueprint("keys", __name__, url_prefix="/settings")


@bp.app_template_filter("ago")
def ago(moment: datetime) -> str:
    """A time as people say it ("3 minutes ago"); templates put the exact time in a title."""
    return relative_time(moment)


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
    return render_page_or_block("keys/list.html", "key_list", **_list_context(market))


def _list_context(market, highlight_id: int | None = None) -> dict[str, object]:  # noqa: ANN001
    """What the key list needs (its filters from the query string); `highlight_id` marks a key."""
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
    filters["q"] = request.args.get("q", "")[:80]
    listing = service.list_keys_page(
        g.merchant.id,
        filters["type"],
        filters["state"],
        filters["market"],
        search=filters["q"],
        page=_int_arg("page") or 1,
    )
    args = {name: value for name, value in filters.items() if value and name != "market"}
    if market is None and filters["market"] is not None:
        args["market"] = filters["market"]
    where = (
        {"endpoint": "keys.market_keys", "market_id": market.id}
        if market
        else {"endpoint": "keys.list_keys"}
    )

    def page_url(number: int) -> str:
        return url_for(**where, **args, page=number)

    return {
        "keys": listing.keys,
        "listing": listing,
        "page_url": page_url,
        "filters": filters,
        "market": market,
        "markets": list_markets(g.merchant.id),
        "states": service.states(),
        "expiring_soon": service.expiring_soon,
        "highlight_id": highlight_id if highlight_id is not None else _int_arg("new"),
    }


def _new_key_form() -> NewKeyForm:
    """The create form, from the posted data or with the SPEC's defaults."""
    if request.method == "POST":
        form = NewKeyForm()
    elif request.args.get("key_type") and "label" in request.args:
        # The type or the preset changed (htmx): keep what was typed, start from that type's
        # default scopes, or from the preset's scopes and rate limit.
        form = NewKeyForm(formdata=request.args)
        form.scopes.data = default_scopes(form.key_type.data)
        if request.args.get("apply") == "preset":
            _apply_preset(form)
    else:
        key_type = request.args.get("key_type", "publishable")
        key_type = key_type if is_key_type(key_type) else "publishable"
        market_id = _int_arg("market_id")  # "New API key" on a market's page preselects it
        if market_id is not None and get_market(g.merchant.id, market_id) is None:
            market_id = None
        form = NewKeyForm(
            formdata=None,
            key_type=key_type,
            scopes=default_scopes(key_type),
            market_id=market_id,
        )
    if not form.request_token.data:
        form.request_token.data = service.new_request_token()
    form.set_markets(list_markets(g.merchant.id))
    return form


@bp.route("/api-keys/new", methods=["GET", "POST"])
@login_required
def new_key() -> Response:
    """The create form; a valid post creates the key and shows it once."""
    form = _new_key_form()
    if request.method == "POST" and (_adds_a_row(form) or _apply_preset(form)):
        return _render_new(form)
    if form.is_submitted():
        parsed = form.validate()
        try:
            if not parsed:
                service.validate_settings(g.merchant.id, form.key_type.data, form.to_settings())
            else:
                reveal_request = _reveal_request(form)
                key, token = service.create_key(
                    g.merchant.id,
                    form.key_type.data,
                    form.to_settings(),
                    _actor(),
                    request=reveal_request,
                )
                return _after_minting(key, token, "created", reveal_request)
        except service.KeyInvalid as error:
            form.add_service_errors(error.errors)
        except service.DuplicateRequest as duplicate:
            return _after_duplicate(duplicate.reveal)
    if request.method == "GET" and is_partial() and "label" in request.args:
        return render_page_or_block("keys/new.html", "key_form", **_new_form_context(form))
    return _render_new(form, 422 if form.has_errors() else 200)


def _apply_preset(form: NewKeyForm) -> bool:
    """Start the form from the chosen preset ("Apply preset" without JavaScript); True if done."""
    values = request.form if request.method == "POST" else request.args
    if values.get("add", values.get("apply")) != "preset":
        return False
    preset = presets.find(values.get("preset"))
    if preset is not None:
        form.key_type.data = preset.key_type
        form.scopes.data = preset.registered_scopes
        form.rate_limit.data = preset.rate_limit
        form.rate_limit.raw_data = [str(preset.rate_limit)]  # what the field shows
    return True


def _new_form_context(form: NewKeyForm) -> dict[str, object]:
    """What the create form needs: with htmx it shows only the chosen type's settings."""
    values = request.form if request.method == "POST" else request.args
    return {
        "form": form,
        "scopes": scopes,
        "presets": presets.offered(),
        "chosen_preset": values.get("preset", ""),
        "follows_type": is_partial(),
        # A whole page loaded with JavaScript on: htmx re-renders the form for its type at once.
        "refresh_type": request.method == "GET" and not is_partial(),
    }


def _adds_a_row(form: KeySettingsForm) -> bool:
    """Handle 'Add origin', 'Add IP range' and each row's 'Remove' (they post the form without
    saving); the field to focus next goes on `form.focus_field`."""
    lists = {"origin": form.allowed_origins, "ip_range": form.allowed_ip_ranges}
    target = lists.get(request.form.get("add", ""))
    if target is not None:
        if len(target.entries) < target.max_entries:
            target.append_entry()
        form.focus_field = target.entries[-1].id
        return True
    kind, _, index = request.form.get("remove", "").rpartition("-")
    target = lists.get(kind)
    if target is None or not (index.isascii() and index.isdigit()):
        return False
    values = [entry.data or "" for entry in target.entries]
    if int(index) < len(values):
        del values[int(index)]
    while target.entries:
        target.pop_entry()
    for value in values or [""]:
        target.append_entry(value)
    form.focus_field = target.entries[min(int(index), len(target.entries) - 1)].id
    return True


def _render_new(form: NewKeyForm, status: int = 200) -> Response:
    """The create page, or its form for htmx."""
    return render_page_or_block("keys/new.html", "main", status, **_new_form_context(form))


REVEAL_PADS = "reveal_pads"  # session: idempotency token -> one-time pad (hex), until shown
MAX_PENDING_REVEALS = 5


def _reveal_request(form: NewKeyForm | RotateForm) -> service.RevealRequest:
    """The submission's idempotency token, and a pad when the key is shown after a 303.

    htmx shows the key in this very response, so nothing is kept. Without JavaScript the key
    waits for the next page, sealed: the database row holds key XOR pad and the signed session
    holds the pad, so neither the database nor the cookie alone holds the key.
    """
    sent = form.request_token.data
    request_token = sent if service.is_request_token(sent) else service.new_request_token()
    pad = None if is_partial() else service.new_pad()
    return service.RevealRequest(request_token, g.user.id, pad)


def _after_minting(
    key: ApiKey, token: str, event: str, reveal_request: service.RevealRequest
) -> Response:
    """htmx: the dialog now, over the list. Without JavaScript: 303 to the page that shows it."""
    if reveal_request.pad is None:
        return _render_reveal(key, token, event)
    pads = dict(session.get(REVEAL_PADS, {}))
    pads[reveal_request.request_token] = reveal_request.pad.hex()
    session[REVEAL_PADS] = dict(list(pads.items())[-MAX_PENDING_REVEALS:])
    location = url_for("keys.reveal", request_token=reveal_request.request_token)
    return _no_store(redirect(location, code=303))


def _after_duplicate(reveal: KeyReveal) -> Response:
    """A form sent again: no second key; show what the first submission made."""
    if is_partial():
        return _render_reveal(reveal.api_key, None, reveal.event)
    location = url_for("keys.reveal", request_token=reveal.request_token)
    return _no_store(redirect(location, code=303))


@bp.route("/api-keys/reveal/<request_token>")
@login_required
def reveal(request_token: str) -> Response:
    """The page after a create or rotate without JavaScript: the new key once, over the list."""
    pads = dict(session.get(REVEAL_PADS, {}))
    pad = pads.pop(request_token, None)
    session[REVEAL_PADS] = pads
    try:
        shown = service.open_reveal(
            g.merchant.id, g.user.id, request_token, bytes.fromhex(pad) if pad else None
        )
    except ValueError:
        shown = None
    if shown is None:
        abort(404)
    return _render_reveal(shown.key, shown.token, shown.event)


def _render_reveal(key: ApiKey, token: str | None, event: str) -> Response:
    """Show a new key once, in a dialog over the list with the key highlighted; never cached."""
    response = render_page_or_block(
        "keys/reveal.html",
        "main",
        key=key,
        token=token,
        event=event,
        **_list_context(None, highlight_id=key.id),
    )
    if is_partial():
        response.headers["HX-Push-Url"] = url_for("keys.list_keys", new=key.id)
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
            related=service.audit_related_keys(g.merchant.id, events),
            markets={market.id: market for market in list_markets(g.merchant.id)},
            **key_usage_context(key, request.args.get("outcome")),
        )
    )


@bp.route("/api-keys/<int:key_id>/edit", methods=["GET", "POST"])
@login_required
def edit_key(key_id: int) -> Response:
    """Change a key's settings; the key itself stays the same."""
    key = key_or_404(key_id)
    refusal = service.edit_refusal(key)
    if refusal is not None:
        # Neither the page nor a hand-made POST edits a revoked, expired or retiring key.
        return render_page_or_block("keys/not_editable.html", "main", 409, key=key, message=refusal)
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
    if not form.request_token.data:
        form.request_token.data = service.new_request_token()
    if form.validate_on_submit():
        reveal_request = _reveal_request(form)
        try:
            new_key, token = service.rotate_key(
                key, form.grace.data, _actor(), request=reveal_request
            )
        except service.DuplicateRequest as duplicate:
            return _after_duplicate(duplicate.reveal)
        except service.KeyInvalid as error:
            form.grace.errors = [*form.grace.errors, *error.errors["grace"]]
        except service.KeyNotActive as error:
            form.grace.errors = [*form.grace.errors, str(error)]
        else:
            return _after_minting(new_key, token, "rotated", reveal_request)
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


def _audit_filters() -> dict[str, object]:
    """The audit log's filters from the query string; anything odd is ignored."""
    key_id = _int_arg("key")
    if key_id is not None:
        try:
            service.get_key(g.merchant.id, key_id)
        except service.KeyNotFound:
            key_id = None
    action = request.args.get("action")
    return {
        "key": key_id,
        "action": action if action in service.AUDIT_ACTIONS else None,
        "since": _date_arg("since"),
        "until": _date_arg("until"),
    }


def _date_arg(name: str) -> date | None:
    """A YYYY-MM-DD query parameter, or None."""
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _filtered_events(filters: dict[str, object], **options: object) -> list:  # noqa: ANN401
    """The audit events matching the filters (`until` includes that whole day)."""
    since, until = filters["since"], filters["until"]
    return service.audit_events(
        g.merchant.id,
        key_id=filters["key"],
        action=filters["action"],
        since=datetime.combine(since, time()) if since else None,
        until=datetime.combine(until + timedelta(days=1), time()) if until else None,
        **options,
    )


@bp.route("/audit")
@login_required
def audit_log() -> Response:
    """The merchant's audit log, newest first, 50 at a time, filtered by key, action and date."""
    filters = _audit_filters()
    events = _filtered_events(filters, limit=51, before_id=_int_arg("before"))
    query = {name: value for name, value in filters.items() if value is not None}
    return render_page_or_block(
        "keys/audit.html",
        "main",
        events=events[:50],
        next_before=events[49].id if len(events) > 50 else None,
        filters=filters,
        query=query,
        filtered=bool(query),
        actions=service.AUDIT_ACTIONS,
        all_keys=service.list_keys(g.merchant.id),
        related=service.audit_related_keys(g.merchant.id, events),
        markets={market.id: market for market in list_markets(g.merchant.id)},
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


@bp.route("/markets/<int:market_id>/rename", methods=["GET", "POST"], endpoint="rename_market")
@login_required
def rename_market_page(market_id: int) -> Response:
    """Rename one of the merchant's markets (the code stays)."""
    market = market_or_404(market_id)
    form = MarketNameForm(data={"name": market.name})
    if form.validate_on_submit():
        old_name = market.name
        try:
            service.rename_market(market, form.name.data, _actor())
        except AccountError as error:
            form[error.field].errors.append(error.message)
        else:
            if market.name != old_name:
                flash(f"Market {market.code} renamed to “{market.name}”.", "success")
            return see_other(url_for("keys.markets"), _render_markets)
    status = 422 if form.errors else 200
    return render_page_or_block(
        "accounts/market_rename.html", "main", status, form=form, market=market
    )


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


AUDIT_CSV_HEADER = ["id", "time", "action", "key_id", "key", "label", "actor", "ip", "details"]


@bp.route("/audit.csv")
@login_required
def audit_csv() -> Response:
    """The filtered audit log as CSV, newest first (every matching event)."""
    filters = _audit_filters()
    rows = [
        [
            event.id,
            csv_cell(event.created_at),
            event.action,
            event.api_key_id or "",
            event.api_key.masked if event.api_key else "",
            csv_cell(event.api_key.label if event.api_key else ""),
            csv_cell(event.actor),
            event.ip or "",
            csv_cell(json.dumps(event.details or {}, sort_keys=True)),
        ]
        for event in _filtered_events(filters, limit=None)
    ]
    return csv_response("audit-log.csv", AUDIT_CSV_HEADER, iter(rows))
