"""Every portal route in the url_map, attacked: another merchant's ids, no session, no CSRF
token, a method the route does not take. (The merchant-data checks, such as lists showing only
the merchant's own keys, are in tests/keys/test_isolation.py.)"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.accounts.models import User
from tests import conftest
from tests.conftest import csrf_token, sign_in
from tests.factories import Victim
from tests.helpers import HX, html, key_state, row_counts, text
from tests.security.conftest import PUBLIC_ENDPOINTS, fill, form_body, portal_rules

# The routes, listed once at collection time (the url_map does not depend on the database).
RULES = portal_rules(create_app(conftest.test_config("sqlite://")))
WITH_IDS = [rule for rule in RULES if "<" in rule[1]]
READ_ONLY = sorted(
    {(endpoint, rule) for endpoint, rule, _method in WITH_IDS}
    - {(endpoint, rule) for endpoint, rule, method in WITH_IDS if method == "POST"}
)
PRIVATE = [rule for rule in RULES if rule[0] not in PUBLIC_ENDPOINTS]
POSTS = [rule for rule in RULES if rule[2] == "POST"]


def ids(rules: list[tuple[str, str, str]]) -> list[str]:
    return [f"{method} {rule}" for _endpoint, rule, method in rules]


def test_the_url_map_has_the_routes_the_attacks_expect() -> None:
    endpoints = {endpoint for endpoint, _rule, _method in RULES}
    assert {
        "keys.show_key",
        "keys.rotate_key",
        "keys.market_keys",
        "usage.key_usage_csv",
        "keys.markets",
        "accounts.logout",
    } <= endpoints
    assert len(WITH_IDS) >= 10 and len(POSTS) >= 8


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize(("endpoint", "rule", "method"), WITH_IDS, ids=ids(WITH_IDS))
def test_another_merchants_ids_are_404(
    app: Flask,
    other_user: User,
    victim: Victim,
    endpoint: str,
    rule: str,
    method: str,
    htmx: bool,
) -> None:
    intruder = app.test_client()
    sign_in(intruder, other_user.email)
    token = csrf_token(intruder, "/settings/markets")
    before = (row_counts(), key_state(victim.key.id))

    response = intruder.open(
        fill(rule, victim.ids),
        method=method,
        data={**form_body(endpoint), "csrf_token": token} if method == "POST" else None,
        headers=HX if htmx else {},
    )

    assert response.status_code == 404, endpoint
    body = response.get_data(as_text=True)
    assert "Victim" not in body and victim.key.masked not in body
    assert (row_counts(), key_state(victim.key.id)) == before


@pytest.mark.parametrize(("endpoint", "rule"), READ_ONLY, ids=[rule for _e, rule in READ_ONLY])
def test_a_post_to_a_read_only_page_is_405_whoever_owns_the_id(
    app: Flask, signed_in: FlaskClient, other_user: User, victim: Victim, endpoint: str, rule: str
) -> None:
    intruder = app.test_client()
    sign_in(intruder, other_user.email)
    before = (row_counts(), key_state(victim.key.id))

    own = signed_in.post(fill(rule, victim.ids), data=form_body(endpoint))
    foreign = intruder.post(fill(rule, victim.ids), data=form_body(endpoint))

    # Refused before the id is looked up: the answer cannot tell whose the id is.
    assert own.status_code == foreign.status_code == 405, endpoint
    assert own.headers["Allow"] == foreign.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert "Victim" not in foreign.get_data(as_text=True)
    assert (row_counts(), key_state(victim.key.id)) == before


@pytest.mark.parametrize(("endpoint", "rule", "method"), PRIVATE, ids=ids(PRIVATE))
def test_without_a_session_every_private_route_sends_to_sign_in(
    client: FlaskClient, victim: Victim, endpoint: str, rule: str, method: str
) -> None:
    token = csrf_token(client, "/auth/login")  # an anonymous session's valid token
    before = (row_counts(), key_state(victim.key.id))

    response = client.open(
        fill(rule, victim.ids),
        method=method,
        data={**form_body(endpoint), "csrf_token": token} if method == "POST" else None,
    )

    assert response.status_code in (302, 303), endpoint
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert "Victim" not in response.get_data(as_text=True)
    assert (row_counts(), key_state(victim.key.id)) == before
    assert html(client.get(response.headers["Location"])).find("h1").get_text() == "Sign in"


@pytest.mark.parametrize(("endpoint", "rule", "method"), PRIVATE, ids=ids(PRIVATE))
def test_htmx_without_a_session_is_sent_to_the_whole_sign_in_page(
    client: FlaskClient, victim: Victim, endpoint: str, rule: str, method: str
) -> None:
    token = csrf_token(client, "/auth/login")
    before = (row_counts(), key_state(victim.key.id))

    response = client.open(
        fill(rule, victim.ids),
        method=method,
        data={**form_body(endpoint), "csrf_token": token} if method == "POST" else None,
        headers=HX,
    )

    # A redirect would make htmx swap the sign-in page into the fragment's place.
    assert response.status_code == 204, endpoint
    assert response.headers["HX-Redirect"].startswith("/auth/login?next=")
    assert response.get_data() == b""
    assert (row_counts(), key_state(victim.key.id)) == before


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize(("endpoint", "rule", "method"), POSTS, ids=ids(POSTS))
def test_every_post_without_a_csrf_token_is_400_and_writes_nothing(
    app: Flask,
    user: User,
    victim: Victim,
    endpoint: str,
    rule: str,
    method: str,
    htmx: bool,
) -> None:
    browser = app.test_client()
    if endpoint not in PUBLIC_ENDPOINTS:
        sign_in(browser, user.email)
    before = (row_counts(), key_state(victim.key.id))

    response = browser.post(
        fill(rule, victim.ids), data=form_body(endpoint), headers=HX if htmx else {}
    )

    assert response.status_code == 400, endpoint
    assert "Form expired" in text(html(response))
    assert (row_counts(), key_state(victim.key.id)) == before
    if endpoint not in PUBLIC_ENDPOINTS:  # the session survived (logout was refused too)
        assert browser.get("/settings/api-keys").status_code == 200


@pytest.mark.parametrize(("endpoint", "rule", "method"), POSTS, ids=ids(POSTS))
def test_a_csrf_token_from_another_session_is_refused(
    app: Flask,
    user: User,
    other_user: User,
    victim: Victim,
    endpoint: str,
    rule: str,
    method: str,
) -> None:
    attacker = app.test_client()
    sign_in(attacker, other_user.email)
    stolen = csrf_token(attacker, "/settings/markets")
    browser = app.test_client()
    if endpoint not in PUBLIC_ENDPOINTS:
        sign_in(browser, user.email)
    before = (row_counts(), key_state(victim.key.id))

    response = browser.post(
        fill(rule, victim.ids), data={**form_body(endpoint), "csrf_token": stolen}
    )

    assert response.status_code == 400, endpoint
    assert (row_counts(), key_state(victim.key.id)) == before
