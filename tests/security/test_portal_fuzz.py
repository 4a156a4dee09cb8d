"""Hypothesis sends every portal route of the url_map (signed in) odd ids, query parameters and
form fields: whatever arrives, the portal never answers 500 (PROPAGATE_EXCEPTIONS is on in
tests, so an unhandled error fails the example with its traceback)."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import create_app
from portal.accounts.models import User
from tests import conftest
from tests.factories import Victim, make_key
from tests.security.conftest import portal_rules

RULES = portal_rules(create_app(conftest.test_config("sqlite://")))
# Signing out or in (or up) would change whose ids the rest of the run tries.
SESSION_CHANGING = {"accounts.logout", "accounts.login", "accounts.register"}
TARGETS = [rule for rule in RULES if rule[0] not in SESSION_CHANGING or rule[2] == "GET"]
FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)  # no lone surrogates in URLs
ODD_INTEGERS = st.sampled_from(
    [0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]
) | st.integers(min_value=-(2**70), max_value=2**70)
ODD_STRINGS = TEXT | st.sampled_from(
    ["", " ", "²", "٣", "３", "1e3", "0x10", "1.5", "\x00", "%00", "None", "null", "💳", "a" * 300]
)
ODD = ODD_INTEGERS.map(str) | ODD_STRINGS
# What the portal's pages and forms read, plus names nobody reads.
QUERY_NAMES = ["market", "before", "type", "state", "key_type", "label", "next", "page", "q"]
FORM_NAMES = [
    "key_type", "label", "description", "scopes", "market_id", "allowed_origins-0",
    "allowed_ip_ranges-0", "rate_limit", "expires_at", "grace", "add", "code", "name",
]  # fmt: skip


@pytest.fixture
def targets(signed_in: FlaskClient, user: User, victim: Victim) -> dict[str, Any]:
    """The signed-in owner's browser and token, with real ids (theirs and another merchant's)."""
    other = conftest.make_user("other@shop.test", "Other Shop")
    foreign, _ = make_key(other, "publishable", label="Not yours")
    return {
        "client": signed_in,
        "token": conftest.csrf_token(signed_in, "/settings/api-keys/new"),
        "ids": [victim.key.id, victim.market.id, foreign.id],
    }


def argument(ids: list[int]) -> st.SearchStrategy[str]:
    """A path argument: a real id now and then, else anything."""
    return st.sampled_from(ids).map(str) | ODD


def test_no_portal_route_answers_500(targets: dict[str, Any]) -> None:
    cases: Counter[str] = Counter()

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        endpoint, rule, method = data.draw(st.sampled_from(TARGETS), label="route")
        path = rule
        while "<" in path:
            start, end = path.index("<"), path.index(">")
            value = data.draw(argument(targets["ids"]), label=path[start + 1 : end])
            path = path[:start] + quote(value, safe="") + path[end + 1 :]
        query = data.draw(st.dictionaries(st.sampled_from(QUERY_NAMES) | TEXT, ODD, max_size=3))
        form: dict[str, Any] = {}
        if method == "POST":
            form = data.draw(st.dictionaries(st.sampled_from(FORM_NAMES), ODD, max_size=6))
            if data.draw(st.booleans(), label="with its CSRF token"):
                form["csrf_token"] = targets["token"]
        htmx = data.draw(st.booleans(), label="htmx")

        response = targets["client"].open(
            path,
            method=method,
            query_string=query,
            data=form or None,
            headers={"HX-Request": "true"} if htmx else {},
        )

        assert response.status_code < 500, (method, path, query, form)
        cases[f"{response.status_code} {endpoint}"] += 1

    run()

    # Hypothesis could have drawn only refusals (odd ids, missing tokens): the run reached every
    # route, real pages, 404s and form errors.
    print(f"\nhypothesis: {cases.total()} requests")
    for label, count in sorted(cases.items()):
        print(f"  {count:4d}  {label}")
    assert {case.split(" ", 1)[1] for case in cases} == {endpoint for endpoint, _r, _m in TARGETS}
    statuses = {int(case.split(" ", 1)[0]) for case in cases}
    assert {200, 404} <= statuses and statuses & {400, 422}, cases
