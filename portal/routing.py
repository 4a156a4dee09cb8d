"""URL rules: ids are ASCII digits within the databases' integer range; rules as templates."""

from __future__ import annotations

import re

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from portal.database import ID_MAX

# <name>, <int:name>, <int(max=2147483647):name>: the converter and the argument's name
RULE_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


class IdConverter(IntegerConverter):
    """`<int:…>`: ASCII digits only (Werkzeug's own takes "٣" as 3), at most 2^31 − 1 by default.

    Anything else does not match the rule, so it answers 404 rather than reaching the database.
    """

    regex = r"[0-9]+"

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = ID_MAX,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_converters(app: Flask) -> None:
    """Make `<int:…>` the ASCII, bounded id converter for every route (before any is added)."""
    app.url_map.converters["int"] = IdConverter


def rule_template(rule: str) -> str:
    """A rule as people read it: `/carts/<int:cart_id>` is `/carts/{cart_id}`."""
    return RULE_ARGUMENT.sub(lambda match: "{" + match["name"] + "}", rule)


def id_arg(value: str | None) -> int | None:
    """A query parameter as an id (ASCII digits, 1 to 2^31 − 1), or None for anything else."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 1 <= number <= ID_MAX else None
