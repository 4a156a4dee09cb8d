"""CSV downloads: rows streamed as a file, and cells a spreadsheet shows as data, never runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime

from flask import Response, stream_with_context

from portal.database import iso_utc


def csv_response(filename: str, header: list[str], rows: Iterator[list[object]]) -> Response:
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


def csv_cell(value: object) -> object:
    """A CSV cell: ISO times, one-decimal floats, empty for None, text never a formula."""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.1f}"
    return value
