"""Usage pages: a key's usage panel (polled by htmx), the merchant overview, CSV exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime

from flask import Blueprint, Response, abort, g, request, stream_with_context

from portal.htmx import render_page_or_block
from portal.keys import service as keys
from portal.keys.models import ApiKey
from portal.usage import stats
from portal.web import login_required

bp = Blueprint("usage", __name__, url_prefix="/settings")


def chart_labels() -> dict[str, object]:
    """Label formats for the charts' bars."""
    return {
        "hour_label": lambda moment: moment.strftime("%H:00"),
        "day_label": lambda day: day.strftime("%b %d"),
        "outcome_labels": stats.OUTCOME_LABELS,
    }


def key_usage_context(key: ApiKey) -> dict[str, object]:
    """What the usage panel of a key needs (recent calls filtered by ?outcome=)."""
    outcome = request.args.get("outcome")
    outcome = outcome if outcome in stats.OUTCOMES else None
    usage = stats.summarize(merchant_id=key.merchant_id, key_id=key.id, recent_outcome=outcome)
    return {"usage": usage, "recent_outcome": outcome, **chart_labels()}


def _key_or_404(key_id: int) -> ApiKey:
    """The signed-in merchant's key, or 404."""
    try:
        return keys.get_key(g.merchant.id, key_id)
    except keys.KeyNotFound:
        abort(404)


@bp.route("/api-keys/<int:key_id>/usage")
@login_required
def key_usage(key_id: int) -> Response:
    """A key's usage: the panel alone for htmx polling, a page without JavaScript."""
    key = _key_or_404(key_id)
    return render_page_or_block("usage/key.html", "usage_panel", key=key, **key_usage_context(key))


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


def _csv(filename: str, header: list[str], rows: Iterator[list[object]]) -> Response:
    """Stream rows as a CSV download."""

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in (header, *rows):
            writer.writerow(row)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A CSV cell: ISO times, one-decimal floats, empty for None, text never a formula."""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.1f}"
    return value


KEY_CSV_HEADER = ["hour", "calls", *stats.OUTCOMES, "avg_latency_ms"]


@bp.route("/api-keys/<int:key_id>/usage.csv")
@login_required
def key_usage_csv(key_id: int) -> Response:
    """Every hourly rollup of a key, oldest first."""
    key = _key_or_404(key_id)
    rows = (
        [
            _cell(row.hour),
            row.calls,
            *(getattr(row, name) for name in stats.OUTCOMES),
            _cell(row.latency_sum_ms / row.calls if row.calls else None),
        ]
        for row in stats.hourly_rows(key.merchant_id, key.id)
    )
    return _csv(f"usage-key-{key.id}.csv", KEY_CSV_HEADER, rows)


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
            _cell(key.label),
            key.key_type,
            key.state,
            usage.total_calls,
            usage.calls_24h,
            usage.window_calls,
            "" if usage.success_rate is None else f"{usage.success_rate:.4f}",
            _cell(usage.avg_latency_ms),
            _cell(usage.p95_latency_ms),
            _cell(key.last_used_at),
        ]
        for key, usage in stats.per_key_summaries(g.merchant.id)
    ]
    return _csv("usage.csv", OVERVIEW_CSV_HEADER, iter(rows))
