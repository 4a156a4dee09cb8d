"""Usage pages: a key's usage panel (polled by htmx), the merchant overview, CSV exports."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from portal.accounts.access import login_required
from portal.csv_export import csv_cell, csv_response
from portal.htmx import render_page_or_block
from portal.keys.access import key_or_404
from portal.usage import stats
from portal.usage.panel import chart_labels, key_usage_context

bp = Blueprint("usage", __name__, url_prefix="/settings")


@bp.route("/api-keys/<int:key_id>/usage")
@login_required
def key_usage(key_id: int) -> Response:
    """A key's usage: the panel alone for htmx polling, a page without JavaScript."""
    key = key_or_404(key_id)
    return render_page_or_block(
        "usage/key.html",
        "usage_panel",
        key=key,
        **key_usage_context(key, request.args.get("outcome")),
    )


@bp.route("/usage")
@login_required
def overview() -> Response:
    """Usage summed over every key of the merchant, with the busiest keys."""
    merchant_id = g.merchant.id
    return render_page_or_block(
        "usage/overview.html",
        "main",
        usage=stats.summarize(merchant_id=merchant_id, recent=False),
        busiest=stats.busiest_keys(merchant_id),
        expiring=stats.expiring_keys(merchant_id),
        **chart_labels(),
    )


KEY_CSV_HEADER = ["hour", "calls", *stats.OUTCOMES, "avg_latency_ms"]


@bp.route("/api-keys/<int:key_id>/usage.csv")
@login_required
def key_usage_csv(key_id: int) -> Response:
    """Every hourly rollup of a key, oldest first."""
    key = key_or_404(key_id)
    rows = (
        [
            csv_cell(row.hour),
            row.calls,
            *(getattr(row, name) for name in stats.OUTCOMES),
            csv_cell(row.latency_sum_ms / row.calls if row.calls else None),
        ]
        for row in stats.hourly_rows(key.merchant_id, key.id)
    )
    return csv_response(f"usage-key-{key.id}.csv", KEY_CSV_HEADER, rows)


OVERVIEW_CSV_HEADER = [
    "key_id",
    "label",
    "type",
    "state",
    "total_calls",
    "calls_last_24h",
    "calls_30d",
    "success_rate",
    "avg_latency_ms",
    "p95_latency_ms",
    "last_used_at",
]


@bp.route("/usage.csv")
@login_required
def overview_csv() -> Response:
    """One row per key: its figures over the last 30 days."""
    rows = [
        [
            key.id,
            csv_cell(key.label),
            key.key_type,
            key.state,
            usage.total_calls,
            usage.calls_24h,
            usage.window_calls,
            "" if usage.success_rate is None else f"{usage.success_rate:.4f}",
            csv_cell(usage.avg_latency_ms),
            csv_cell(usage.p95_latency_ms),
            csv_cell(key.last_used_at),
        ]
        for key, usage in stats.per_key_summaries(g.merchant.id)
    ]
    return csv_response("usage.csv", OVERVIEW_CSV_HEADER, iter(rows))
