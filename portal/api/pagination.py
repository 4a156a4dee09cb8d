"""Query parameters of list endpoints: cursor pagination (`limit`, `starting_after`) and filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import request

from portal.api.errors import ApiError
from portal.api.schemas.base import ResponseModel, list_body
from portal.store.common import Page

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    """Where a page starts and how long it is."""

    limit: int
    starting_after: int | None


DEFAULT_PAGE = PageParams(DEFAULT_LIMIT, None)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def _is_number(raw: str) -> bool:
    """Plain ASCII digits (str.isdigit alone accepts digits int() refuses, such as "²")."""
    return raw.isascii() and raw.isdigit()


def page_params() -> PageParams:
    """`limit` (1 to 100, default 20) and `starting_after` (an id) from the query string."""
    if not request.environ.get("QUERY_STRING"):
        return DEFAULT_PAGE  # nothing to parse
    raw_limit = request.args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not _is_number(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise _invalid(f"limit must be an integer from 1 to {MAX_LIMIT}.")
        limit = int(raw_limit)
    raw_cursor = request.args.get("starting_after")
    starting_after = None
    if raw_cursor is not None:
        if not _is_number(raw_cursor) or len(raw_cursor) > 18:
            raise _invalid("starting_after must be the id of an object in the list.")
        starting_after = int(raw_cursor)
    return PageParams(limit, starting_after)


def bool_param(name: str) -> bool | None:
    """An optional true/false query parameter."""
    raw = request.args.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise _invalid(f"{name} must be true or false.")


def list_response(
    envelope: type[ResponseModel], page: Page[T], build: Callable[[T], ResponseModel]
) -> dict[str, Any]:
    """The list shape every list endpoint returns, through its envelope model."""
    return list_body(envelope, [build(item) for item in page.items], page.has_more)
