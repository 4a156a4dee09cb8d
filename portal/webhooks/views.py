"""The webhook pages: `/settings/webhooks` (list, create, edit, disable, delete, rotate the
secret, send a test event, the delivery log and redeliver)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, g, url_for

from portal.accounts.access import login_required
from portal.htmx import render_page_or_block, see_other
from portal.store.common import InvalidField
from portal.webhooks import delivery as deliveries
from portal.webhooks import service
from portal.webhooks.forms import ConfirmForm, EndpointForm
from portal.webhooks.models import EVENT_TYPES, WebhookEndpoint

bp = Blueprint("webhooks", __name__, url_prefix="/settings/webhooks")


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    try:
        return service.get_endpoint(g.merchant.id, endpoint_id)
    except service.EndpointNotFound:
        abort(404)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("")
@login_required
def list_endpoints() -> Response:
    """The store's endpoints."""
    return _render_list()


def _apply_errors(form: EndpointForm, error: InvalidField | service.WebhookError) -> None:
    field = error.field.split(".")[0].split("[")[0]
    target = form._fields.get(field, form.url)
    target.errors = [*target.errors, error.message]


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new_endpoint() -> Response:
    """The create form; a valid post creates the endpoint and shows its secret once."""
    form = EndpointForm()
    if not form.is_submitted():
        form = EndpointForm(formdata=None, data={"enabled": True})
    elif form.validate():
        try:
            endpoint, secret = service.create_endpoint(g.merchant.id, form.to_body())
        except (InvalidField, service.WebhookError) as error:
            _apply_errors(form, error)
        else:
            return _render_secret(endpoint, secret, "created")
    return render_page_or_block(
        "webhooks/form.html",
        "main",
        422 if form.has_errors() else 200,
        form=form,
        endpoint=None,
        event_types=EVENT_TYPES,
    )


def _render_secret(endpoint: WebhookEndpoint, secret: str, event: str) -> Response:
    """The signing secret, shown this once; never cached."""
    return _no_store(
        render_page_or_block(
            "webhooks/secret.html", "main", endpoint=endpoint, secret=secret, event=event
        )
    )


@bp.route("/<int:endpoint_id>")
@login_required
def show_endpoint(endpoint_id: int) -> Response:
    """One endpoint, its actions and its delivery log."""
    return _render_show(_endpoint_or_404(endpoint_id))


def _render_show(endpoint: WebhookEndpoint) -> Response:
    return render_page_or_block(
        "webhooks/show.html",
        "main",
        endpoint=endpoint,
        deliveries=service.deliveries(endpoint),
        form=ConfirmForm(formdata=None),
    )


def _back_to(endpoint: WebhookEndpoint) -> Response:
    return see_other(
        url_for("webhooks.show_endpoint", endpoint_id=endpoint.id),
        lambda: _render_show(endpoint),
    )


@bp.route("/<int:endpoint_id>/edit", methods=["GET", "POST"])
@login_required
def edit_endpoint(endpoint_id: int) -> Response:
    """Change the URL, description, events or whether it is enabled."""
    endpoint = _endpoint_or_404(endpoint_id)
    form = EndpointForm()
    if not form.is_submitted():
        form = EndpointForm.of(endpoint)
    elif form.validate():
        try:
            service.update_endpoint(endpoint, form.to_body())
        except (InvalidField, service.WebhookError) as error:
            _apply_errors(form, error)
        else:
            flash("Endpoint saved.", "success")
            return _back_to(endpoint)
    return render_page_or_block(
        "webhooks/form.html",
        "main",
        422 if form.has_errors() else 200,
        form=form,
        endpoint=endpoint,
        event_types=EVENT_TYPES,
    )


@bp.post("/<int:endpoint_id>/toggle")
@login_required
def toggle_endpoint(endpoint_id: int) -> Response:
    """Disable an enabled endpoint, or enable a disabled one."""
    endpoint = _endpoint_or_404(endpoint_id)
    if ConfirmForm().validate_on_submit():
        service.update_endpoint(endpoint, {"enabled": not endpoint.enabled})
        flash("Endpoint enabled." if endpoint.enabled else "Endpoint disabled.", "success")
    return _back_to(endpoint)


@bp.post("/<int:endpoint_id>/test")
@login_required
def test_endpoint(endpoint_id: int) -> Response:
    """Send a test event to the endpoint now."""
    endpoint = _endpoint_or_404(endpoint_id)
    if ConfirmForm().validate_on_submit():
        deliveries.send_test_event(endpoint)
        flash("Test event sent: its delivery is at the top of the log.", "success")
    return _back_to(endpoint)


@bp.post("/<int:endpoint_id>/rotate")
@login_required
def rotate_secret(endpoint_id: int) -> Response:
    """A new signing secret; the old one keeps signing for 24 hours."""
    endpoint = _endpoint_or_404(endpoint_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _render_secret(endpoint, service.rotate_secret(endpoint), "rotated")


@bp.post("/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
@login_required
def redeliver(endpoint_id: int, delivery_id: int) -> Response:
    """Send a delivery's event again now."""
    endpoint = _endpoint_or_404(endpoint_id)
    try:
        original = service.get_delivery(endpoint, delivery_id)
    except service.EndpointNotFound:
        abort(404)
    if ConfirmForm().validate_on_submit():
        deliveries.redeliver(original)
        flash("Redelivery sent: it is at the top of the log.", "success")
    return _back_to(endpoint)


@bp.route("/<int:endpoint_id>/delete", methods=["GET", "POST"])
@login_required
def delete_endpoint(endpoint_id: int) -> Response:
    """Confirm, then delete the endpoint and its log."""
    endpoint = _endpoint_or_404(endpoint_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        service.delete_endpoint(endpoint)
        flash("Endpoint deleted.", "success")
        return see_other(url_for("webhooks.list_endpoints"), _render_list)
    return render_page_or_block("webhooks/delete.html", "main", endpoint=endpoint, form=form)


def _render_list() -> Response:
    return render_page_or_block(
        "webhooks/list.html", "main", endpoints=service.list_endpoints(g.merchant.id)
    )
