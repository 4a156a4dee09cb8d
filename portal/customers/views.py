"""The portal's customer pages: search the store's shoppers, see one, sign them out everywhere."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, g, request, url_for

from portal.accounts.access import login_required
from portal.customers import service
from portal.customers.forms import SignOutEverywhereForm
from portal.htmx import render_page_or_block, see_other

bp = Blueprint("customers", __name__, url_prefix="/settings")

PER_PAGE = 25
QUERY_MAX = 100


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    return min(int(raw), 10_000) if raw.isascii() and raw.isdigit() and int(raw) >= 1 else 1


@bp.route("/customers")
@login_required
def list_customers() -> Response:
    """The store's shoppers, newest first, searchable by email or name, 25 a page."""
    query = request.args.get("q", "").strip()[:QUERY_MAX]
    page = _page_arg()
    rows, has_more = service.search_customers(g.merchant.id, query, page, PER_PAGE)
    return render_page_or_block(
        "customers/list.html",
        "customer_list",
        rows=rows,
        query=query,
        page=page,
        has_more=has_more,
    )


def _detail_or_404(customer_id: int) -> service.CustomerDetail:
    """The signed-in merchant's customer, or 404 (another merchant's customer does not exist)."""
    try:
        return service.customer_detail(g.merchant.id, customer_id)
    except service.CustomerNotFound:
        abort(404)


def _render_customer(customer_id: int, form: SignOutEverywhereForm | None = None) -> Response:
    detail = _detail_or_404(customer_id)
    return render_page_or_block(
        "customers/show.html",
        "main",
        detail=detail,
        orders=service.customer_orders(g.merchant.id, customer_id),
        form=form or SignOutEverywhereForm(formdata=None),
    )


@bp.route("/customers/<int:customer_id>")
@login_required
def show_customer(customer_id: int) -> Response:
    """One shopper: account, orders and open sessions."""
    return _render_customer(customer_id)


@bp.route("/customers/<int:customer_id>/sign-out", methods=["POST"])
@login_required
def sign_out_customer(customer_id: int) -> Response:
    """End every sign-in of the shopper; each stops on its next request."""
    detail = _detail_or_404(customer_id)
    form = SignOutEverywhereForm()
    if not form.validate_on_submit():
        abort(400)
    ended = service.sign_out_everywhere(g.merchant.id, detail.customer.id)
    flash(
        f"{detail.customer.email} is signed out everywhere "
        f"({ended} session{'' if ended == 1 else 's'} ended).",
        "success",
    )
    location = url_for("customers.show_customer", customer_id=customer_id)
    return see_other(location, lambda: _render_customer(customer_id))
