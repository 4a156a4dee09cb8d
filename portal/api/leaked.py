"""`POST /api/v1/leaked-keys`: where secret scanners report keys found in public code."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from flask import current_app, request
from pydantic import Field, StringConstraints

from portal.api import bp
from portal.api.auth import public
from portal.api.errors import parse_body
from portal.api.schemas.base import ResponseModel
from portal.extensions import limiter
from portal.keys import leaks
from portal.store.requests import RequestModel

ReportedKey = Annotated[str, StringConstraints(max_length=leaks.KEY_TEXT_MAX)]


class LeakReport(RequestModel):
    """What a secret scanner found: the key strings, as they appear in the code."""

    object_name: ClassVar[str] = "leak report"

    keys: list[ReportedKey] = Field(
        min_length=1,
        max_length=leaks.MAX_KEYS,
        description=f"a list of 1 to {leaks.MAX_KEYS} strings",
        examples=[["sk_live_…"]],
    )


class LeakReceipt(ResponseModel):
    """The report was taken; it says nothing about whether the keys are ours."""

    received: int = Field(description="How many strings the report held.")


@bp.post("/leaked-keys")
@public
@limiter.limit(lambda: current_app.config["LEAKED_KEYS_LIMIT_PER_IP"])
def report_leaked_keys() -> tuple[dict[str, Any], int]:
    """Report keys found in public code. Needs no key; answers 202 whatever the keys are."""
    report = parse_body(LeakReport)
    received = leaks.report_leaks(report.keys, request.remote_addr)
    return LeakReceipt(received=received).body(), 202
