"""The store settings page: `/settings/store`."""

from __future__ import annotations

from flask import Blueprint, Response, flash, g, url_for

from portal.accounts.access import login_required
from portal.htmx import render_page_or_block, see_other
from portal.settings import service
from portal.settings.forms import StoreSettingsForm
from portal.store.common import InvalidField

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.route("/store", methods=["GET", "POST"])
@login_required
def store() -> Response:
    """Show the store's settings and change them."""
    form = StoreSettingsForm()
    if not form.is_submitted():
        form = StoreSettingsForm.of(service.get_settings(g.merchant.id))
    elif form.validate():
        try:
            _settings, changed = service.update_settings(g.merchant.id, form.to_change())
        except InvalidField as error:
            form[error.field].errors = [*form[error.field].errors, error.message]
        else:
            flash("Settings saved." if changed else "Nothing changed.", "success")
            return see_other(url_for("settings.store"), _render_saved)
    return _render(form, 422 if form.has_errors() else 200)


def _render_saved() -> Response:
    return _render(StoreSettingsForm.of(service.get_settings(g.merchant.id)))


def _render(form: StoreSettingsForm, status: int = 200) -> Response:
    """The settings page, or its main block for htmx."""
    return render_page_or_block("settings/store.html", "main", status, form=form)
