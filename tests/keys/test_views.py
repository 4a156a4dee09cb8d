"""The keys pages, each flow without JavaScript (full pages, 303s) and with htmx (partials)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts import service as accounts
from portal.accounts.models import Market, User
from portal.database import utcnow
from portal.extensions import db
from portal.keys import service as keys
from portal.keys import tokens
from portal.keys.models import ApiKey, AuditEvent, KeyReveal
from portal.keys.scopes import DEFAULT_SCOPES, SCOPES
from portal.tasks import every_minute
from tests.conftest import make_key, sign_in
from tests.helpers import (
    HX,
    assert_fragment,
    assert_full_page,
    count,
    field_errors,
    html,
    post,
    snapshot,
    text,
)

NEW = "/settings/api-keys/new"
XSS = "<script>alert(1)</script>"
BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])


@pytest.fixture
def market(user: User) -> Market:
    """A market of the signed-in merchant."""
    return accounts.add_market(user.merchant_id, "US", "United States")


def get(client: FlaskClient, url: str, htmx: bool = False):  # noqa: ANN201
    """GET as a plain browser or as htmx."""
    return client.get(url, headers=HX if htmx else {})


def page_or_fragment(response, htmx: bool, root_id: str | None = None) -> BeautifulSoup:  # noqa: ANN001
    """Check the response is the full page or the partial, and parse it."""
    if htmx:
        return assert_fragment(response, root_id)
    return assert_full_page(response)


def key_rows(soup: BeautifulSoup) -> dict[str, list[str]]:
    """The key list's rows by label: the text of each cell."""
    table = soup.find(id="key-list")
    assert table is not None
    rows = {}
    for row in table.find("tbody").find_all("tr"):
        cells = [text(cell) for cell in row.find_all("td")]
        if len(cells) > 1:
            label = row.find_all("td")[1].find("a")
            rows[text(label)] = cells
    return rows


def created_key() -> ApiKey:
    """The newest key in the database."""
    db.session.expire_all()
    return db.session.scalars(select(ApiKey).order_by(ApiKey.id.desc())).first()


def mint(client: FlaskClient, url: str, data: dict[str, object], htmx: bool = False):  # noqa: ANN201
    """Post a create or rotate form; without JavaScript check the 303 and follow it once."""
    response = post(client, url, data, htmx=htmx)
    if htmx:
        return response
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert response.headers["Location"].startswith("/settings/api-keys/reveal/")
    assert response.headers["Cache-Control"] == "no-store"
    return client.get(response.headers["Location"])


def key_form(**fields: object) -> dict[str, object]:
    """A create-form submission with the SPEC's defaults for a publishable key."""
    data: dict[str, object] = {
        "key_type": "publishable",
        "label": "Storefront",
        "description": "",
        "scopes": list(DEFAULT_SCOPES["publishable"]),
        "market_id": "",
        "allowed_origins-0": "",
        "allowed_ip_ranges-0": "",
        "rate_limit": "60",
        "expires_at": "",
    }
    data.update(fields)
    return data


# --- the list -------------------------------------------------------------------------------


@BOTH
def test_list_shows_every_column_of_each_key(
    signed_in: FlaskClient, user: User, market: Market, htmx: bool
) -> None:
    secret, secret_token = make_key(
        user, "secret", label="Stock sync", market_id=market.id,
        expires_at=utcnow() + timedelta(days=30),
    )  # fmt: skip
    open_key, _ = make_key(user, "publishable", label="Dev storefront")
    closed_key, _ = make_key(
        user, "publishable", label="Shop", allowed_origins=["https://shop.example.com"]
    )

    response = get(signed_in, "/settings/api-keys", htmx)

    assert response.status_code == 200
    soup = page_or_fragment(response, htmx, "key-list")
    headers = [text(th) for th in soup.find(id="key-list").find("thead").find_all("th")]
    assert headers == [
        "Type", "Label", "Key", "Market", "State", "Created", "Last used", "Expires",
    ]  # fmt: skip
    rows = key_rows(soup)
    kind, label, masked, market_code, state, created, last_used, expires = rows["Stock sync"]
    assert kind == "Secret" and label == "Stock sync"
    assert masked == f"sk_live_…{secret_token[-4:]}" == secret.masked
    assert market_code == "US"
    assert "Active" in state
    assert created == "just now" and user.email not in created  # the creator is on its page
    assert last_used == "Never"
    assert expires in ("in 29 days", "in 30 days")
    row = soup.find("a", string="Stock sync").find_parent("tr")
    expiry = row.find_all("td")[7].find("time")
    assert expiry["title"] == secret.expires_at.strftime("%Y-%m-%d %H:%M") + " UTC"
    assert expiry["datetime"] == secret.expires_at.isoformat(timespec="seconds") + "Z"
    assert rows["Dev storefront"][0] == "Publishable"
    assert rows["Dev storefront"][3] == "All markets"
    assert "Allows all origins (Development)" in rows["Dev storefront"][1]
    assert "Allows all origins" not in rows["Shop"][1]
    assert secret_token not in response.get_data(as_text=True)
    assert {open_key.masked, closed_key.masked} <= {row[2] for row in rows.values()}


def test_list_shows_revoked_and_expired_states(signed_in: FlaskClient, user: User) -> None:
    revoked, _ = make_key(user, "secret", label="Old")
    keys.revoke_key(revoked, keys.Actor(name=user.email))
    expired, _ = make_key(user, "secret", label="Past", expires_at=utcnow() + timedelta(days=1))
    expired.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    rows = key_rows(html(signed_in.get("/settings/api-keys")))

    assert "Revoked" in rows["Old"][4]
    assert "Expired" in rows["Past"][4] and "Active" not in rows["Past"][4]


@pytest.fixture
def filter_keys(user: User, market: Market) -> None:
    """One key per filter value."""
    make_key(user, "publishable", label="pk-all")
    make_key(user, "publishable", label="pk-us", market_id=market.id)
    make_key(user, "secret", label="sk-all")
    revoked, _ = make_key(user, "secret", label="sk-revoked")
    keys.revoke_key(revoked, keys.Actor(name=user.email))


@BOTH
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"pk-all", "pk-us", "sk-all", "sk-revoked"}),
        ("type=publishable", {"pk-all", "pk-us"}),
        ("type=secret", {"sk-all", "sk-revoked"}),
        ("state=active", {"pk-all", "pk-us", "sk-all"}),
        ("state=revoked", {"sk-revoked"}),
        ("state=expired", set()),
        ("market=MARKET", {"pk-us"}),
        ("type=secret&state=active", {"sk-all"}),
        ("type=bogus&state=bogus&market=abc", {"pk-all", "pk-us", "sk-all", "sk-revoked"}),
    ],
)
def test_list_filters(
    signed_in: FlaskClient,
    market: Market,
    filter_keys: None,
    query: str,
    expected: set[str],
    htmx: bool,
) -> None:
    query = query.replace("MARKET", str(market.id))

    response = get(signed_in, f"/settings/api-keys?{query}", htmx)

    soup = page_or_fragment(response, htmx, "key-list")
    assert set(key_rows(soup)) == expected


def test_list_filter_form_remembers_the_choice(signed_in: FlaskClient, market: Market) -> None:
    soup = html(signed_in.get(f"/settings/api-keys?type=secret&state=revoked&market={market.id}"))

    form = soup.find("form", class_="filters")
    assert form["method"] == "get"
    assert form["hx-target"] == "#key-list"
    selected = {
        select["name"]: select.find("option", selected=True)["value"]
        for select in form.find_all("select")
    }
    assert selected == {"type": "secret", "state": "revoked", "market": str(market.id)}


def test_list_has_the_new_key_button(signed_in: FlaskClient) -> None:
    soup = html(signed_in.get("/settings/api-keys"))

    button = soup.find("a", string="New API key")
    assert button is not None and button["href"] == NEW
    assert "No keys yet." in text(soup.find(id="key-list"))  # a new store, no filters


# --- the create form ------------------------------------------------------------------------


@BOTH
def test_create_form_follows_the_spec_defaults(signed_in: FlaskClient, htmx: bool) -> None:
    response = get(signed_in, NEW, htmx)

    assert response.status_code == 200
    soup = page_or_fragment(response, htmx)
    form = soup.find("form", id="key-form")
    assert form["method"] == "post" and form["action"] == NEW
    checked_type = form.find("input", attrs={"name": "key_type", "checked": True})
    assert checked_type["value"] == "publishable"
    checked_scopes = {
        box["value"] for box in form.find_all("input", attrs={"name": "scopes", "checked": True})
    }
    assert checked_scopes == set(DEFAULT_SCOPES["publishable"])
    assert form.find("input", attrs={"name": "rate_limit"})["value"] == "60"
    labels = {text(node) for node in form.find_all(["label", "legend"])}
    assert {
        "Type", "Label", "Description", "Scopes", "Market", "Allowed origins",
        "Rate limit (requests per minute)", "Expires",
    } <= labels  # fmt: skip
    # Without JavaScript the type may change with no re-render, so both types' settings show;
    # with htmx the form follows the type (a publishable key: no IP ranges).
    assert ("Allowed IP ranges" in labels) is not htmx
    assert form.find("button", string="Create key") is not None
    assert form.find("button", attrs={"name": "add", "value": "origin"}).get_text() == "Add origin"
    market = form.find("select", attrs={"name": "market_id"})
    assert [text(option) for option in market.find_all("option")] == ["All markets"]


def test_create_form_offers_every_scope_and_the_merchants_markets(
    signed_in: FlaskClient, market: Market, other_user: User
) -> None:
    accounts.add_market(other_user.merchant_id, "XX", "Not yours")

    form = html(signed_in.get(NEW)).find("form", id="key-form")

    assert {box["value"] for box in form.find_all("input", attrs={"name": "scopes"})} == set(SCOPES)
    select = form.find("select", attrs={"name": "market_id"})
    options = {option["value"]: text(option) for option in select.find_all("option")}
    assert options == {"": "All markets", str(market.id): "US: United States"}


def test_switching_the_type_with_htmx_returns_the_form_with_that_types_defaults(
    signed_in: FlaskClient,
) -> None:
    response = signed_in.get(
        f"{NEW}?key_type=secret&label=Nightly+sync&description=keep+me&scopes=catalog:read",
        headers=HX,
    )

    assert response.status_code == 200
    soup = assert_fragment(response, "key-form")
    form = soup.find(id="key-form")
    assert form.find("input", attrs={"name": "key_type", "checked": True})["value"] == "secret"
    assert form.find("input", attrs={"name": "label"})["value"] == "Nightly sync"
    assert text(form.find("textarea", attrs={"name": "description"})) == "keep me"
    checked = {
        box["value"] for box in form.find_all("input", attrs={"name": "scopes", "checked": True})
    }
    assert checked == set(DEFAULT_SCOPES["secret"])
    assert form.find("input", attrs={"name": "allowed_ip_ranges-0"}) is not None
    assert count(ApiKey) == 0


def test_the_create_page_for_a_type_without_javascript(signed_in: FlaskClient) -> None:
    soup = assert_full_page(signed_in.get(f"{NEW}?key_type=secret"))

    form = soup.find(id="key-form")
    assert form.find("input", attrs={"name": "key_type", "checked": True})["value"] == "secret"
    checked = {
        box["value"] for box in form.find_all("input", attrs={"name": "scopes", "checked": True})
    }
    assert checked == set(DEFAULT_SCOPES["secret"])


def test_without_javascript_a_secret_key_can_get_secret_scopes_and_ip_ranges(
    signed_in: FlaskClient,
) -> None:
    # The default form is for a publishable key; picking "Secret" re-renders nothing without
    # JavaScript, so every secret-only scope and the IP ranges must already be usable.
    form = html(signed_in.get(NEW)).find(id="key-form")
    secret_only = [name for name, scope in SCOPES.items() if scope.secret_only]
    for name in secret_only:
        assert not form.find("input", attrs={"name": "scopes", "value": name}).has_attr("disabled")

    response = mint(
        signed_in,
        NEW,
        key_form(
            key_type="secret",
            label="Sync",
            scopes=["orders:write"],
            **{"allowed_ip_ranges-0": "203.0.113.0/24"},
        ),
    )

    assert response.status_code == 200
    key = created_key()
    assert key.key_type == "secret"
    assert key.scopes == ["orders:write"] and key.allowed_ip_ranges == ["203.0.113.0/24"]


@BOTH
def test_add_origin_adds_a_field_and_writes_nothing(signed_in: FlaskClient, htmx: bool) -> None:
    response = post(
        signed_in,
        NEW,
        key_form(label="Shop", add="origin", **{"allowed_origins-0": "https://a.example.com"}),
        htmx=htmx,
    )

    assert response.status_code == 200
    soup = page_or_fragment(response, htmx)
    origins = soup.find_all(
        "input", attrs={"name": lambda name: name and name.startswith("allowed_origins-")}
    )
    assert [field["name"] for field in origins] == ["allowed_origins-0", "allowed_origins-1"]
    assert origins[0]["value"] == "https://a.example.com"
    assert soup.find("input", attrs={"name": "label"})["value"] == "Shop"
    assert snapshot() == (0, 0)


def test_add_ip_range_adds_a_field(signed_in: FlaskClient) -> None:
    response = post(signed_in, NEW, key_form(key_type="secret", add="ip_range"))

    soup = html(response)
    assert soup.find("input", attrs={"name": "allowed_ip_ranges-1"}) is not None
    assert count(ApiKey) == 0


FORM_ERRORS = [
    pytest.param({"label": ""}, "label", "Enter a label", id="empty-label"),
    pytest.param({"label": "x" * 81}, "label", "at most 80", id="long-label"),
    pytest.param({"rate_limit": "0"}, "rate_limit", "from 1 to 10,000", id="limit-0"),
    pytest.param({"rate_limit": "10001"}, "rate_limit", "from 1 to 10,000", id="limit-10001"),
    pytest.param({"rate_limit": ""}, "rate_limit", "whole number", id="limit-empty"),
    pytest.param({"rate_limit": "lots"}, "rate_limit", "integer", id="limit-not-a-number"),
    pytest.param({"expires_at": "2001-01-01T00:00"}, "expires_at", "in the future", id="past"),
    pytest.param({"expires_at": "tomorrow"}, "expires_at", "datetime", id="expiry-not-a-date"),
    pytest.param(
        {"scopes": ["catalog:read", "orders:write"]}, "scopes", "orders:write", id="secret-scope"
    ),
    pytest.param(
        {"allowed_origins-0": "https://ok.example.com", "allowed_origins-1": "shop.example.com"},
        "allowed_origins-1",
        "scheme://host",
        id="bad-origin",
    ),
    pytest.param(
        {"allowed_origins-0": "https://shop.example.com/checkout"},
        "allowed_origins-0",
        "path",
        id="origin-with-path",
    ),
    pytest.param(
        {"key_type": "secret", "scopes": ["orders:read"], "allowed_ip_ranges-0": "10.0.0.300/8"},
        "allowed_ip_ranges-0",
        "CIDR",
        id="bad-cidr",
    ),
    pytest.param({"market_id": "999999"}, "market_id", "your markets", id="unknown-market"),
]


@BOTH
@pytest.mark.parametrize(("fields", "name", "message"), FORM_ERRORS)
def test_form_errors_are_shown_beside_their_field_and_nothing_is_written(
    signed_in: FlaskClient, fields: dict[str, object], name: str, message: str, htmx: bool
) -> None:
    response = post(signed_in, NEW, key_form(**fields), htmx=htmx)

    assert response.status_code == 422
    soup = page_or_fragment(response, htmx)
    assert message in field_errors(soup, name)
    control = soup.find(attrs={"name": name})
    if control.name != "input" or control.get("type") != "checkbox":
        assert control.get("aria-invalid") == "true"
    assert snapshot() == (0, 0)


@pytest.mark.parametrize(
    ("fields", "fieldset", "message"),
    [
        (
            {"key_type": "secret", "scopes": [], "allowed_origins-0": "https://a.example.com"},
            "origins",
            "allowed origins are for publishable keys",
        ),
        ({"allowed_ip_ranges-0": "203.0.113.0/24"}, "ip-ranges", "IP ranges are for secret keys"),
    ],
)
def test_settings_of_the_other_type_are_refused_beside_their_list(
    signed_in: FlaskClient, fields: dict[str, object], fieldset: str, message: str
) -> None:
    response = post(signed_in, NEW, key_form(**fields))

    assert response.status_code == 422
    assert message in text(html(response).find(id=fieldset).find(class_="field-errors"))
    assert snapshot() == (0, 0)


def test_form_errors_keep_what_was_typed(signed_in: FlaskClient) -> None:
    response = post(
        signed_in,
        NEW,
        key_form(
            label="",
            description="Typed",
            scopes=["catalog:read"],
            rate_limit="120",
            **{"allowed_origins-0": "https://a.example.com", "allowed_origins-1": "bad"},
        ),
    )

    soup = html(response)
    assert text(soup.find("textarea", attrs={"name": "description"})) == "Typed"
    assert soup.find("input", attrs={"name": "rate_limit"})["value"] == "120"
    assert (
        soup.find("input", attrs={"name": "allowed_origins-0"})["value"] == "https://a.example.com"
    )
    checked = {
        box["value"] for box in soup.find_all("input", attrs={"name": "scopes", "checked": True})
    }
    assert checked == {"catalog:read"}


# --- create and reveal ----------------------------------------------------------------------


@BOTH
def test_creating_a_secret_key_reveals_it_once(
    signed_in: FlaskClient, user: User, market: Market, htmx: bool
) -> None:
    response = mint(
        signed_in,
        NEW,
        key_form(
            key_type="secret",
            label="Stock sync",
            description="Nightly job",
            scopes=["products:read", "products:write"],
            market_id=str(market.id),
            rate_limit="300",
            expires_at="2099-01-31T12:30",
            **{"allowed_ip_ranges-0": "203.0.113.0/24", "allowed_ip_ranges-1": "2001:db8::/32"},
        ),
        htmx=htmx,
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    soup = page_or_fragment(response, htmx)
    key = created_key()
    dialog = soup.find("dialog")
    token = dialog.find("input", id="revealed-key")["value"]
    assert tokens.parse_token(token).key_type == "secret"
    assert tokens.hash_token(token, signed_in.application.config["API_KEY_PEPPER"]) == key.key_hash
    assert dialog.find("button", string="Copy")["data-copy"] == "revealed-key"
    assert "will not be shown again" in text(dialog)
    if htmx:  # after the dialog closes, the list is underneath with the new key highlighted
        assert response.headers["HX-Push-Url"] == f"/settings/api-keys?new={key.id}"
    [new_row] = soup.select("#key-list tr.is-new")
    assert "Stock sync" in text(new_row) and "New" in text(new_row)
    assert (key.label, key.description, key.rate_limit) == ("Stock sync", "Nightly job", 300)
    assert key.scopes == ["products:read", "products:write"] and key.market_id == market.id
    assert key.allowed_ip_ranges == ["203.0.113.0/24", "2001:db8::/32"]
    assert key.expires_at.isoformat() == "2099-01-31T12:30:00"
    assert key.created_by_id == user.id
    [event] = db.session.scalars(select(AuditEvent)).all()
    assert (event.action, event.actor, event.ip) == ("created", user.email, "127.0.0.1")

    # The token is never shown again: not on the key page, the list or the audit log.
    for url in (f"/settings/api-keys/{key.id}", "/settings/api-keys", "/settings/audit"):
        page = signed_in.get(url)
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert token not in body and token[8:-4] not in body
        assert key.masked in body


@BOTH
def test_creating_a_publishable_key_shows_it_and_it_stays_on_its_page(
    signed_in: FlaskClient, htmx: bool
) -> None:
    response = mint(
        signed_in,
        NEW,
        key_form(
            label="Shop",
            **{
                "allowed_origins-0": "HTTPS://Shop.Example.com",
                "allowed_origins-1": "https://*.example.net",
            },
        ),
        htmx=htmx,
    )

    assert response.status_code == 200
    soup = page_or_fragment(response, htmx)
    token = soup.find("input", id="revealed-key")["value"]
    assert token.startswith("pk_live_")
    assert "will not be shown again" not in text(soup)
    key = created_key()
    assert key.allowed_origins == ["https://shop.example.com", "https://*.example.net"]
    assert key.scopes == list(DEFAULT_SCOPES["publishable"])

    key_page = html(signed_in.get(f"/settings/api-keys/{key.id}"))
    assert key_page.find("input", id="publishable-key")["value"] == token


def test_a_csrf_header_is_enough_for_htmx(signed_in: FlaskClient) -> None:
    token = html(signed_in.get(NEW)).find("input", attrs={"name": "csrf_token"})["value"]

    response = signed_in.post(NEW, data=key_form(), headers={**HX, "X-CSRFToken": token})

    assert response.status_code == 200 and count(ApiKey) == 1


# --- the key page ---------------------------------------------------------------------------


@BOTH
def test_key_page_shows_everything_about_the_key(
    signed_in: FlaskClient, user: User, market: Market, htmx: bool
) -> None:
    key, token = make_key(
        user,
        "secret",
        label="Stock sync",
        description="Nightly inventory job",
        scopes=["products:read", "orders:write"],
        market_id=market.id,
        allowed_ip_ranges=["203.0.113.0/24"],
        rate_limit=1500,
        expires_at=utcnow() + timedelta(days=60),
    )

    response = get(signed_in, f"/settings/api-keys/{key.id}", htmx)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    soup = page_or_fragment(response, htmx)
    page = text(soup)
    assert text(soup.find("h1")) == "Stock sync"
    for expected in (
        key.masked,
        "Secret",
        "Active",
        "Nightly inventory job",
        "US: United States",
        "1,500 requests per minute",
        key.expires_at.strftime("%Y-%m-%d %H:%M"),
        f"by {user.email}",
        "products:read",
        "orders:write",
        "203.0.113.0/24",
    ):
        assert expected in page, expected
    assert "orders:read" not in page
    assert token not in response.get_data(as_text=True)
    events = soup.find(id="events-title").find_parent("section")
    assert "Created" in text(events) and user.email in text(events)
    actions = {text(link) for link in soup.select(".page-head .actions a")}
    assert actions == {"Edit", "Rotate key", "Revoke key"}


def test_key_page_of_a_publishable_key_shows_origins_or_the_warning(
    signed_in: FlaskClient, user: User
) -> None:
    closed, _ = make_key(user, "publishable", allowed_origins=["https://shop.example.com"])
    open_key, _ = make_key(user, "publishable")

    closed_page = text(html(signed_in.get(f"/settings/api-keys/{closed.id}")))
    open_page = text(html(signed_in.get(f"/settings/api-keys/{open_key.id}")))

    assert "https://shop.example.com" in closed_page
    assert "Allows all origins (Development)" not in closed_page
    assert "Allows all origins (Development)" in open_page


def test_an_expired_key_is_shown_as_expired_without_actions(
    signed_in: FlaskClient, user: User
) -> None:
    key, _ = make_key(user, "secret", expires_at=utcnow() + timedelta(days=1))
    key.expires_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    every_minute()  # the worker's periodic task logs the expiry (a page view writes nothing)

    soup = html(signed_in.get(f"/settings/api-keys/{key.id}"))

    assert "Expired" in text(soup.find(class_="lead"))
    assert soup.select(".page-head .actions") == []
    events = db.session.scalars(select(AuditEvent.action).where(AuditEvent.api_key_id == key.id))
    assert list(events) == ["created", "expired"]


def test_a_key_expiring_within_a_week_is_flagged(signed_in: FlaskClient, user: User) -> None:
    key, _ = make_key(user, "secret", label="Soon", expires_at=utcnow() + timedelta(days=2))

    assert "Expires within 7 days" in key_rows(html(signed_in.get("/settings/api-keys")))["Soon"][7]
    assert "within 7 days" in text(html(signed_in.get(f"/settings/api-keys/{key.id}")))


def test_an_unknown_key_is_404(signed_in: FlaskClient) -> None:
    assert signed_in.get("/settings/api-keys/424242").status_code == 404


# --- edit -----------------------------------------------------------------------------------


@BOTH
def test_edit_form_starts_with_the_keys_settings(
    signed_in: FlaskClient, user: User, market: Market, htmx: bool
) -> None:
    key, _ = make_key(
        user,
        "publishable",
        label="Shop",
        scopes=["catalog:read"],
        market_id=market.id,
        allowed_origins=["https://a.example.com", "https://b.example.com"],
        rate_limit=90,
    )

    response = get(signed_in, f"/settings/api-keys/{key.id}/edit", htmx)

    assert response.status_code == 200
    form = page_or_fragment(response, htmx).find("form", id="key-form")
    assert form["action"] == f"/settings/api-keys/{key.id}/edit"
    assert form.find("input", attrs={"name": "label"})["value"] == "Shop"
    checked = {
        box["value"] for box in form.find_all("input", attrs={"name": "scopes", "checked": True})
    }
    assert checked == {"catalog:read"}
    assert form.find("option", selected=True)["value"] == str(market.id)
    assert [
        form.find("input", attrs={"name": f"allowed_origins-{i}"})["value"] for i in (0, 1)
    ] == [
        "https://a.example.com",
        "https://b.example.com",
    ]
    assert form.find("input", attrs={"name": "rate_limit"})["value"] == "90"
    assert form.find(id="ip-ranges") is None
    for name, scope in SCOPES.items():
        box = form.find("input", attrs={"name": "scopes", "value": name})
        assert box.has_attr("disabled") == scope.secret_only


@BOTH
def test_edit_changes_settings_but_keeps_the_key(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    key, _ = make_key(user, "secret", label="Old name", expires_at=utcnow() + timedelta(days=9))
    key_hash, masked = key.key_hash, key.masked
    form = html(signed_in.get(f"/settings/api-keys/{key.id}/edit")).find("form", id="key-form")
    expires = form.find("input", attrs={"name": "expires_at"})["value"]

    response = post(
        signed_in,
        f"/settings/api-keys/{key.id}/edit",
        {
            "label": "New name",
            "description": "Changed",
            "scopes": ["orders:read", "customers:read"],
            "market_id": "",
            "allowed_ip_ranges-0": "198.51.100.7",
            "rate_limit": "75",
            "expires_at": expires,
        },
        htmx=htmx,
    )

    if htmx:
        assert response.status_code == 200
        assert response.headers["HX-Push-Url"] == f"/settings/api-keys/{key.id}"
        soup = assert_fragment(response)
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == f"/settings/api-keys/{key.id}"
        soup = html(signed_in.get(response.headers["Location"]))
    assert "Key updated. The key itself did not change." in text(soup.find(class_="flashes"))
    assert text(soup.find("h1")) == "New name"
    assert masked in text(soup)
    db.session.expire_all()
    key = db.session.get(ApiKey, key.id)
    assert (key.key_hash, key.masked) == (key_hash, masked)
    assert key.scopes == ["orders:read", "customers:read"]
    assert key.allowed_ip_ranges == ["198.51.100.7/32"] and key.rate_limit == 75
    [updated] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "updated"))
    assert set(updated.details["changes"]) == {
        "label", "description", "scopes", "allowed_ip_ranges", "rate_limit",
    }  # fmt: skip


def test_saving_the_edit_form_unchanged_changes_and_logs_nothing(
    signed_in: FlaskClient, user: User
) -> None:
    key, _ = make_key(
        user,
        "publishable",
        allowed_origins=["https://shop.example.com"],
        expires_at=utcnow() + timedelta(days=9, seconds=30),
    )
    names = ("expires_at", "label", "scopes", "allowed_origins", "rate_limit")
    before = {name: getattr(key, name) for name in names}
    form = html(signed_in.get(f"/settings/api-keys/{key.id}/edit")).find("form", id="key-form")
    data = {
        field["name"]: field.get("value", "")
        for field in form.find_all("input")
        if field.get("type") not in ("checkbox", "radio") and field.get("name") != "csrf_token"
    }
    data["scopes"] = [box["value"] for box in form.find_all("input", checked=True)]
    data["market_id"] = ""

    response = post(signed_in, f"/settings/api-keys/{key.id}/edit", data)

    assert response.status_code == 303
    db.session.expire_all()
    key = db.session.get(ApiKey, key.id)
    assert {name: getattr(key, name) for name in names} == before
    assert count(AuditEvent) == 1  # only "created"


@BOTH
def test_edit_errors_are_shown_beside_the_field_and_change_nothing(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    key, _ = make_key(user, "publishable", label="Keep")
    before = snapshot()

    response = post(
        signed_in,
        f"/settings/api-keys/{key.id}/edit",
        {"label": "Changed", "scopes": ["catalog:read"], "rate_limit": "60",
         "allowed_origins-0": "javascript:alert(1)"},
        htmx=htmx,
    )  # fmt: skip

    assert response.status_code == 422
    soup = page_or_fragment(response, htmx)
    assert field_errors(soup, "allowed_origins-0")
    assert snapshot() == before
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).label == "Keep"


@pytest.mark.parametrize("state", ["revoked", "expired", "rotated"])
@pytest.mark.parametrize("method", ["GET", "POST"])
@BOTH
def test_a_revoked_expired_or_retiring_key_cannot_be_edited(
    signed_in: FlaskClient, user: User, state: str, method: str, htmx: bool
) -> None:
    key, _ = make_key(user, "secret", label="Gone", expires_at=utcnow() + timedelta(days=3))
    actor = keys.Actor(name=user.email, user_id=user.id)
    if state == "revoked":
        keys.revoke_key(key, actor)
    elif state == "expired":
        key.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    else:
        replacement, _ = keys.rotate_key(key, "24h", actor)  # in its grace period: still active
    before = (snapshot(), keys.settings_of(db.session.get(ApiKey, key.id)))
    url = f"/settings/api-keys/{key.id}/edit"

    if method == "POST":
        form = {"label": "Back", "scopes": ["orders:write"], "rate_limit": "9000"}
        response = post(signed_in, url, form, htmx=htmx)
    else:
        response = get(signed_in, url, htmx)

    assert response.status_code == 409
    soup = page_or_fragment(response, htmx)
    assert soup.find("form", id="key-form") is None
    message = text(soup.find(class_="danger-box"))
    assert "can no longer be edited" in message
    assert (state in message) if state != "rotated" else ("rotated" in message)
    if state == "rotated":
        assert soup.find("a", href=f"/settings/api-keys/{replacement.id}/edit") is not None
    db.session.expire_all()
    assert (snapshot(), keys.settings_of(db.session.get(ApiKey, key.id))) == before


# --- rotate ---------------------------------------------------------------------------------


@BOTH
def test_rotate_asks_to_confirm_with_the_grace_periods(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    key, _ = make_key(user, "secret")

    response = get(signed_in, f"/settings/api-keys/{key.id}/rotate", htmx)

    soup = page_or_fragment(response, htmx)
    options = {
        radio["value"]: text(radio.find_next("label"))
        for radio in soup.find_all("input", attrs={"name": "grace"})
    }
    assert options == {"now": "Now", "1h": "1 hour", "24h": "24 hours", "7d": "7 days"}
    assert soup.find("input", attrs={"name": "grace", "checked": True})["value"] == "now"
    assert soup.find("button", string="Rotate key") is not None
    assert count(ApiKey) == 1


@BOTH
@pytest.mark.parametrize(
    ("grace", "period"),
    [
        ("now", timedelta(0)),
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
    ],
)
def test_rotate_reveals_the_new_key_and_stops_the_old_one(
    signed_in: FlaskClient, user: User, grace: str, period: timedelta, htmx: bool
) -> None:
    old, old_token = make_key(
        user, "secret", label="Sync", scopes=["orders:read"], allowed_ip_ranges=["10.0.0.0/8"]
    )
    started = utcnow()

    response = mint(signed_in, f"/settings/api-keys/{old.id}/rotate", {"grace": grace}, htmx=htmx)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    soup = page_or_fragment(response, htmx)
    token = soup.find("input", id="revealed-key")["value"]
    assert token != old_token and token.startswith("sk_live_")
    assert "will not be shown again" in text(soup.find("dialog"))
    new = created_key()
    assert new.id != old.id
    assert (new.label, new.scopes, new.allowed_ip_ranges) == (
        "Sync", ["orders:read"], ["10.0.0.0/8"],
    )  # fmt: skip
    db.session.refresh(old)
    assert started + period <= old.revoked_at <= utcnow() + period
    expected_state = keys.STATE_REVOKED if grace == "now" else keys.STATE_ACTIVE
    assert old.state == expected_state

    old_page = text(html(signed_in.get(f"/settings/api-keys/{old.id}")))
    assert new.masked in old_page
    if grace != "now":
        assert "keeps working until" in old_page


@BOTH
def test_rotate_with_an_unknown_grace_period_is_refused(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    key, _ = make_key(user, "secret")

    response = post(signed_in, f"/settings/api-keys/{key.id}/rotate", {"grace": "1y"}, htmx=htmx)

    assert response.status_code == 422
    page_or_fragment(response, htmx)
    assert text(html(response).find(class_="field-errors"))
    assert snapshot() == (1, 1)


def test_a_key_in_its_grace_period_is_not_offered_for_rotation_again(
    signed_in: FlaskClient, user: User
) -> None:
    key, _ = make_key(user, "secret")
    post(signed_in, f"/settings/api-keys/{key.id}/rotate", {"grace": "7d"})
    before = snapshot()

    soup = html(signed_in.get(f"/settings/api-keys/{key.id}"))
    response = post(signed_in, f"/settings/api-keys/{key.id}/rotate", {"grace": "7d"})

    assert {text(link) for link in soup.select(".page-head .actions a")} == {"Revoke key"}
    assert response.status_code == 422
    assert "already rotated" in text(html(response).find(class_="field-errors"))
    assert snapshot() == before


# --- revoke ---------------------------------------------------------------------------------


@BOTH
def test_revoke_asks_to_confirm_then_stops_the_key(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    key, _ = make_key(user, "publishable", label="Shop")

    confirm = get(signed_in, f"/settings/api-keys/{key.id}/revoke", htmx)

    soup = page_or_fragment(confirm, htmx)
    assert "cannot be undone" in text(soup)
    assert soup.find("button", string="Revoke key") is not None
    db.session.refresh(key)
    assert key.state == keys.STATE_ACTIVE

    response = post(signed_in, f"/settings/api-keys/{key.id}/revoke", htmx=htmx)

    if htmx:
        assert response.status_code == 200
        assert response.headers["HX-Push-Url"] == f"/settings/api-keys/{key.id}"
        soup = assert_fragment(response)
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == f"/settings/api-keys/{key.id}"
        soup = html(signed_in.get(response.headers["Location"]))
    assert "is revoked" in text(soup.find(class_="flashes"))
    assert "Revoked" in text(soup.find(class_="lead"))
    assert soup.find("input", id="publishable-key") is None
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).state == keys.STATE_REVOKED


def test_revoking_twice_says_so_and_logs_once(signed_in: FlaskClient, user: User) -> None:
    key, _ = make_key(user, "secret")
    post(signed_in, f"/settings/api-keys/{key.id}/revoke")

    response = post(signed_in, f"/settings/api-keys/{key.id}/revoke")

    assert response.status_code == 303
    flash = text(html(signed_in.get(response.headers["Location"])).find(class_="flashes"))
    assert "already revoked" in flash
    revoked = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "revoked"))
    assert len(list(revoked)) == 1


# --- markets --------------------------------------------------------------------------------


@BOTH
def test_add_a_market(signed_in: FlaskClient, user: User, htmx: bool) -> None:
    response = post(
        signed_in,
        "/settings/markets",
        {"code": "eu", "name": "European Union"},
        htmx=htmx,
        token_from="/settings/markets",
    )

    if htmx:
        assert response.status_code == 200
        assert response.headers["HX-Push-Url"] == "/settings/markets"
        soup = assert_fragment(response)
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == "/settings/markets"
        soup = html(signed_in.get("/settings/markets"))
    assert "Market EU added." in text(soup.find(class_="flashes"))
    assert "European Union" in text(soup.find("table"))
    assert [market.code for market in accounts.list_markets(user.merchant_id)] == ["EU"]


@BOTH
@pytest.mark.parametrize(
    ("fields", "name", "message"),
    [
        ({"code": "US", "name": "Again"}, "code", "already a market US"),
        ({"code": "us", "name": "Again"}, "code", "already a market US"),
        ({"code": "U S", "name": "Spaces"}, "code", "letters, digits or hyphens"),
        ({"code": "", "name": "No code"}, "code", "required"),
        ({"code": "CA", "name": ""}, "name", "required"),
    ],
)
def test_market_errors_are_shown_beside_the_field(
    signed_in: FlaskClient,
    user: User,
    market: Market,
    fields: dict[str, str],
    name: str,
    message: str,
    htmx: bool,
) -> None:
    response = post(
        signed_in, "/settings/markets", fields, htmx=htmx, token_from="/settings/markets"
    )

    assert response.status_code == 422
    soup = page_or_fragment(response, htmx)
    assert message in field_errors(soup, name)
    assert count(Market) == 1


@BOTH
def test_market_keys_page_lists_only_that_markets_keys(
    signed_in: FlaskClient, user: User, market: Market, htmx: bool
) -> None:
    make_key(user, "publishable", label="US shop", market_id=market.id)
    make_key(user, "secret", label="Everywhere")

    markets_page = text(html(signed_in.get("/settings/markets")).find("table"))
    response = get(signed_in, f"/settings/markets/{market.id}/api-keys", htmx)

    assert "1 key" in markets_page
    assert response.status_code == 200
    soup = page_or_fragment(response, htmx, "key-list")
    assert set(key_rows(soup)) == {"US shop"}
    if not htmx:
        assert "API keys of United States" in text(soup.find("h1"))


def test_market_keys_page_filters_within_the_market(
    signed_in: FlaskClient, user: User, market: Market
) -> None:
    make_key(user, "publishable", label="US shop", market_id=market.id)
    make_key(user, "secret", label="US sync", market_id=market.id)

    response = signed_in.get(f"/settings/markets/{market.id}/api-keys?type=secret", headers=HX)

    assert set(key_rows(assert_fragment(response, "key-list"))) == {"US sync"}


def test_reading_pages_do_not_take_posts(
    signed_in: FlaskClient, user: User, market: Market
) -> None:
    key, _ = make_key(user, "secret")

    for url in (f"/settings/api-keys/{key.id}", f"/settings/markets/{market.id}/api-keys"):
        response = post(signed_in, url)
        assert response.status_code == 405, url


# --- the audit log --------------------------------------------------------------------------


@BOTH
def test_audit_log_lists_events_with_actor_and_ip(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    key, _ = make_key(user, "secret", label="Sync")
    post(signed_in, f"/settings/api-keys/{key.id}/revoke")

    response = get(signed_in, "/settings/audit", htmx)

    assert response.status_code == 200
    soup = page_or_fragment(response, htmx)
    rows = [
        [text(cell) for cell in row.find_all("td")] for row in soup.find("tbody").find_all("tr")
    ]
    actions = [text(cell.find("strong")) for cell in soup.select("td.sentence")]
    assert actions == ["Revoked", "Created"]
    revoked, created = rows
    assert "Sync" in revoked[2] and key.masked in revoked[2]
    assert revoked[3] == user.email and revoked[4] == "127.0.0.1"
    assert created[3] == user.email and created[4] == "—"


def test_audit_log_paginates_with_older_events(signed_in: FlaskClient, user: User) -> None:
    key, _ = make_key(user, "secret", label="Busy")
    for limit in range(2, 57):
        keys.update_key(
            key, keys.KeySettings(label="Busy", scopes=list(key.scopes), rate_limit=limit),
            keys.Actor(name=user.email),
        )  # fmt: skip
    total = count(AuditEvent)
    assert total == 56

    first = html(signed_in.get("/settings/audit"))
    older = first.find("a", string="Older events")
    second = html(signed_in.get(older["href"]))

    first_rows = first.find("tbody").find_all("tr")
    second_rows = second.find("tbody").find_all("tr")
    assert len(first_rows) == 50 and len(second_rows) == 6
    assert "rate limit changed from 55 per minute to 56 per minute" in text(first_rows[0])
    assert text(second_rows[-1].find("td", class_="sentence").find("strong")) == "Created"
    assert second.find("a", string="Older events") is None


# --- escaping -------------------------------------------------------------------------------


def test_labels_and_descriptions_are_escaped_everywhere(signed_in: FlaskClient, user: User) -> None:
    response = mint(signed_in, NEW, key_form(label=XSS, description=f"desc {XSS}"))
    key = created_key()
    post(
        signed_in,
        f"/settings/api-keys/{key.id}/edit",
        {"label": f"{XSS}!", "description": XSS, "scopes": ["catalog:read"], "rate_limit": "60"},
    )

    pages = {
        "reveal": response,
        "list": signed_in.get("/settings/api-keys"),
        "key": signed_in.get(f"/settings/api-keys/{key.id}"),
        "edit": signed_in.get(f"/settings/api-keys/{key.id}/edit"),
        "rotate": signed_in.get(f"/settings/api-keys/{key.id}/rotate"),
        "revoke": signed_in.get(f"/settings/api-keys/{key.id}/revoke"),
        "audit": signed_in.get("/settings/audit"),
        "list-htmx": signed_in.get("/settings/api-keys", headers=HX),
    }
    for name, page in pages.items():
        body = page.get_data(as_text=True)
        assert page.status_code == 200, name
        assert "<script>alert(1)</script>" not in body, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, name
        assert html(page).find("script", string="alert(1)") is None, name


def test_escaped_label_in_a_form_error(signed_in: FlaskClient) -> None:
    response = post(signed_in, NEW, key_form(label=XSS, rate_limit="0"))

    assert response.status_code == 422
    assert XSS not in response.get_data(as_text=True)
    assert html(response).find("input", attrs={"name": "label"})["value"] == XSS


# --- idempotent create and rotate (a resend, reload or Back never mints another key) ---------


def form_request_token(client: FlaskClient, url: str) -> str:
    """The idempotency token the form on `url` carries."""
    field = html(client.get(url)).find("input", attrs={"name": "request_token"})
    assert field is not None and field["type"] == "hidden" and len(field["value"]) >= 32
    return field["value"]


def session_contents(client: FlaskClient) -> str:
    """The signed session cookie, raw and decoded, as text."""
    app = client.application
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain=app.config["SERVER_NAME"])
    serializer = app.session_interface.get_signing_serializer(app)
    return cookie.value + repr(serializer.loads(cookie.value))


def test_without_javascript_create_posts_then_shows_the_key_once(signed_in: FlaskClient) -> None:
    request_token = form_request_token(signed_in, NEW)
    form = key_form(key_type="secret", label="Stock sync", request_token=request_token)

    response = post(signed_in, NEW, form)

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == f"/settings/api-keys/reveal/{request_token}"
    key = created_key()
    reveal_row = db.session.scalars(select(KeyReveal)).one()
    sealed = reveal_row.sealed
    assert reveal_row.api_key_id == key.id and sealed

    shown = signed_in.get(location)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    soup = assert_full_page(shown)
    token = soup.find("input", id="revealed-key")["value"]
    assert tokens.hash_token(token, signed_in.application.config["API_KEY_PEPPER"]) == key.key_hash
    # The key was never in the URL, the cookie or the database in clear.
    assert token not in location
    assert token not in sealed and token.encode().hex() not in sealed
    assert token[8:-6] not in session_contents(signed_in)
    [row] = soup.select("#key-list tr.is-new")
    assert "Stock sync" in text(row)

    # Reload: the list with the key highlighted, and no key.
    again = signed_in.get(location)
    assert again.status_code == 200
    assert token not in again.get_data(as_text=True)
    again_soup = html(again)
    assert again_soup.find("dialog") is None
    assert "not shown again" in text(again_soup.find(class_="flash"))
    assert again_soup.select("#key-list tr.is-new")
    db.session.expire_all()
    assert db.session.scalars(select(KeyReveal)).one().sealed is None

    # Resending the form (the browser's "resubmit", a double click): still one key.
    resent = post(signed_in, NEW, form)
    assert resent.status_code == 303 and resent.headers["Location"] == location
    assert count(ApiKey) == 1 and count(AuditEvent) == 1
    assert token not in signed_in.get(location).get_data(as_text=True)


def test_htmx_create_resent_with_the_same_token_makes_no_second_key(
    signed_in: FlaskClient,
) -> None:
    request_token = form_request_token(signed_in, NEW)
    form = key_form(label="Shop", request_token=request_token)

    first = post(signed_in, NEW, form, htmx=True)
    second = post(signed_in, NEW, form, htmx=True)

    assert html(first).find("input", id="revealed-key")["value"].startswith("pk_live_")
    assert second.status_code == 200
    assert_fragment(second)
    assert html(second).find("input", id="revealed-key") is None
    assert count(ApiKey) == 1
    assert "was created" in text(html(second).find(class_="flash"))
    # htmx showed the key in the answer itself: nothing was kept sealed.
    assert db.session.scalars(select(KeyReveal)).one().sealed is None


def test_a_form_with_errors_keeps_its_token_so_the_fixed_form_makes_one_key(
    signed_in: FlaskClient,
) -> None:
    request_token = form_request_token(signed_in, NEW)

    failed = post(signed_in, NEW, key_form(label="", request_token=request_token))

    assert failed.status_code == 422
    kept = html(failed).find("input", attrs={"name": "request_token"})["value"]
    assert kept == request_token
    fixed = key_form(label="Fixed", request_token=kept)
    assert post(signed_in, NEW, fixed).status_code == 303
    assert post(signed_in, NEW, fixed).status_code == 303
    assert count(ApiKey) == 1


def test_each_fresh_form_has_its_own_token(signed_in: FlaskClient) -> None:
    assert form_request_token(signed_in, NEW) != form_request_token(signed_in, NEW)


@BOTH
def test_rotate_resent_rotates_once(signed_in: FlaskClient, user: User, htmx: bool) -> None:
    old, _ = make_key(user, "secret", label="Sync")
    url = f"/settings/api-keys/{old.id}/rotate"
    request_token = form_request_token(signed_in, url)
    form = {"grace": "24h", "request_token": request_token}

    first = mint(signed_in, url, form, htmx=htmx)
    token = html(first).find("input", id="revealed-key")["value"]
    resent = post(signed_in, url, form, htmx=htmx)

    assert count(ApiKey) == 2
    if htmx:
        assert resent.status_code == 200 and html(resent).find("input", id="revealed-key") is None
    else:
        assert resent.status_code == 303
        assert token not in signed_in.get(resent.headers["Location"]).get_data(as_text=True)
    db.session.refresh(old)
    assert old.replaced_by_id == created_key().id


def test_another_members_reveal_page_is_not_found(
    app,
    signed_in: FlaskClient,
    user: User,
    other_user: User,  # noqa: ANN001
) -> None:
    request_token = form_request_token(signed_in, NEW)
    post(signed_in, NEW, key_form(key_type="secret", label="Mine", request_token=request_token))
    intruder = app.test_client()
    sign_in(intruder, other_user.email)

    response = intruder.get(f"/settings/api-keys/reveal/{request_token}")

    assert response.status_code == 404
    assert "Mine" not in response.get_data(as_text=True)


def test_a_reveal_page_in_another_browser_of_the_same_member_shows_no_key(
    app,
    signed_in: FlaskClient,
    user: User,  # noqa: ANN001
) -> None:
    request_token = form_request_token(signed_in, NEW)
    post(signed_in, NEW, key_form(key_type="secret", label="Mine", request_token=request_token))
    elsewhere = app.test_client()
    sign_in(elsewhere, user.email)

    response = elsewhere.get(f"/settings/api-keys/reveal/{request_token}")

    assert response.status_code == 200
    assert html(response).find("input", id="revealed-key") is None
    # ...and the seal is gone, so the first browser cannot show it later either.
    assert html(signed_in.get(f"/settings/api-keys/reveal/{request_token}")).find("dialog") is None


def test_a_sealed_key_is_not_shown_after_the_reveal_window(
    signed_in: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_token = form_request_token(signed_in, NEW)
    post(signed_in, NEW, key_form(key_type="secret", label="Late", request_token=request_token))
    later = utcnow() + keys.REVEAL_WINDOW + timedelta(minutes=1)
    monkeypatch.setattr(keys, "utcnow", lambda: later)

    response = signed_in.get(f"/settings/api-keys/reveal/{request_token}")

    assert response.status_code == 200 and html(response).find("dialog") is None


# --- the list of a store that has grown --------------------------------------------------------


@BOTH
def test_list_pages_past_50_keys_newest_first(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    for number in range(63):
        make_key(user, "publishable", label=f"Integration {number:02d}")

    first = page_or_fragment(get(signed_in, "/settings/api-keys", htmx), htmx, "key-list")
    labels = list(key_rows(first))
    assert len(labels) == 50 and labels[0] == "Integration 62" and labels[-1] == "Integration 13"
    assert "Keys 1–50 of 63" in text(first.find("caption"))
    older = first.find("a", rel="next")
    assert older["href"] == "/settings/api-keys?page=2" and older["hx-get"] == older["href"]

    second = page_or_fragment(get(signed_in, older["href"], htmx), htmx, "key-list")
    assert list(key_rows(second)) == [f"Integration {n:02d}" for n in range(12, -1, -1)]
    assert "Keys 51–63 of 63" in text(second.find("caption"))
    assert second.find("a", rel="next") is None
    assert second.find("a", rel="prev")["href"] == "/settings/api-keys?page=1"
    # Out-of-range and odd pages fall back to a real page.
    assert len(key_rows(html(signed_in.get("/settings/api-keys?page=999")))) == 13
    assert len(key_rows(html(signed_in.get("/settings/api-keys?page=%C2%B2")))) == 50


@BOTH
def test_list_searches_labels_and_keeps_the_filters_when_paging(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    for number in range(55):
        make_key(user, "secret", label=f"Nightly sync {number:02d}")
    make_key(user, "publishable", label="Storefront 100% live_")
    make_key(user, "secret", label="Storefront backend")

    found = key_rows(html(get(signed_in, "/settings/api-keys?q=STOREFRONT", htmx)))
    assert set(found) == {"Storefront 100% live_", "Storefront backend"}
    # LIKE wildcards are taken literally.
    assert set(key_rows(html(signed_in.get("/settings/api-keys?q=100%25")))) == {
        "Storefront 100% live_"
    }
    assert key_rows(html(signed_in.get("/settings/api-keys?q=_"))).keys() == {
        "Storefront 100% live_"
    }
    paged = html(get(signed_in, "/settings/api-keys?q=nightly&type=secret", htmx))
    assert paged.find("a", rel="next")["href"] == "/settings/api-keys?type=secret&q=nightly&page=2"
    nothing = html(signed_in.get("/settings/api-keys?q=nothing-like-it"))
    assert "No keys match these filters." in text(nothing)
    search = html(signed_in.get("/settings/api-keys?q=nightly")).find("input", attrs={"name": "q"})
    assert search["value"] == "nightly" and search["type"] == "search"


def test_list_warns_about_a_secret_key_used_from_a_browser(
    signed_in: FlaskClient, user: User
) -> None:
    key, token = make_key(user, "secret", label="Leaky")
    make_key(user, "secret", label="Careful")
    signed_in.get(
        "/api/v1/key", headers={"Authorization": f"Bearer {token}", "Origin": "https://x.test"}
    )

    rows = key_rows(html(signed_in.get("/settings/api-keys")))

    assert "Used from a browser" in rows["Leaky"][1]
    assert "Used from a browser" not in rows["Careful"][1]


def test_list_tells_rotated_pairs_apart(signed_in: FlaskClient, user: User) -> None:
    old, _ = make_key(user, "secret", label="Sync")
    new, _ = keys.rotate_key(old, "24h", keys.Actor(name=user.email, user_id=user.id))

    soup = html(signed_in.get("/settings/api-keys"))

    old_row, new_row = (
        soup.find("a", href=f"/settings/api-keys/{key.id}", string="Sync").find_parent("tr")
        for key in (old, new)
    )
    assert f"replaced by {new.masked}" in text(old_row)
    assert f"replaces {old.masked}" in text(new_row)
    assert "stops in 23 hours" in text(old_row) or "stops in 1 day" in text(old_row)


@BOTH
def test_new_api_key_on_a_market_page_preselects_that_market(
    signed_in: FlaskClient, market: Market, htmx: bool
) -> None:
    listing = html(signed_in.get(f"/settings/markets/{market.id}/api-keys"))
    button = listing.find("a", string="New API key")
    assert button["href"] == f"{NEW}?market_id={market.id}"

    form = html(get(signed_in, button["href"], htmx))
    selected = form.find("select", attrs={"name": "market_id"}).find("option", selected=True)
    assert selected["value"] == str(market.id)
    # Not another merchant's (or a made-up) market.
    other = html(signed_in.get(f"{NEW}?market_id=999999"))
    assert (
        other.find("select", attrs={"name": "market_id"}).find("option", selected=True)["value"]
        == ""
    )


# --- the create form follows the type (htmx) and starts from presets -----------------------


def swap_form(client: FlaskClient, **args: str) -> BeautifulSoup:
    """The create form as htmx re-renders it when the type or the preset changes."""
    query = {"label": "", "description": "", "rate_limit": "60", **args}
    response = client.get(NEW, query_string=query, headers=HX)
    assert response.status_code == 200
    return assert_fragment(response, "key-form")


def test_with_htmx_a_publishable_form_has_origins_and_no_secret_scopes(
    signed_in: FlaskClient,
) -> None:
    form = swap_form(signed_in, key_type="publishable")

    assert form.find(id="origins") is not None and form.find(id="ip-ranges") is None
    for name, scope in SCOPES.items():
        box = form.find("input", attrs={"name": "scopes", "value": name})
        assert box.has_attr("disabled") is scope.secret_only, name
    checked = {
        box["value"]
        for box in form.find_all("input", attrs={"checked": True})
        if box["name"] == "scopes"
    }
    assert checked == set(DEFAULT_SCOPES["publishable"])


def test_with_htmx_a_secret_form_has_ip_ranges_and_every_scope(signed_in: FlaskClient) -> None:
    form = swap_form(signed_in, key_type="secret")

    assert form.find(id="ip-ranges") is not None and form.find(id="origins") is None
    assert not form.find_all("input", attrs={"name": "scopes", "disabled": True})
    type_radio = form.find("input", attrs={"name": "key_type", "value": "secret"})
    assert type_radio.has_attr("checked") and type_radio["hx-get"] == NEW


def test_the_whole_page_offers_both_types_and_asks_htmx_to_follow_the_type(
    signed_in: FlaskClient,
) -> None:
    form = html(signed_in.get(NEW)).find(id="key-form")

    assert form.find(id="origins") is not None and form.find(id="ip-ranges") is not None
    assert form.has_attr("data-refresh-type")  # static/js/portal.js asks htmx for one type


@pytest.mark.parametrize(
    ("slug", "key_type", "expected_scopes", "rate_limit"),
    [
        (
            "storefront",
            "publishable",
            ["catalog:read", "cart:write", "checkout:create", "customer:auth"],
            "600",
        ),
        ("inventory", "secret", ["products:read", "products:write"], "300"),
        ("fulfilment", "secret", ["orders:read", "orders:write", "customers:read"], "120"),
        ("analytics", "secret", ["orders:read", "analytics:read"], "60"),
    ],
)
@BOTH
def test_a_preset_sets_the_type_scopes_and_rate_limit_and_keeps_the_label(
    signed_in: FlaskClient,
    slug: str,
    key_type: str,
    expected_scopes: list[str],
    rate_limit: str,
    htmx: bool,
) -> None:
    if htmx:
        form = swap_form(
            signed_in, key_type="publishable", label="Warehouse", preset=slug, apply="preset"
        )
    else:  # "Apply preset" posts the form without saving it
        response = post(signed_in, NEW, key_form(label="Warehouse", preset=slug, add="preset"))
        assert response.status_code == 200
        form = assert_full_page(response).find(id="key-form")
    assert count(ApiKey) == 0
    assert form.find("input", attrs={"name": "key_type", "checked": True})["value"] == key_type
    checked = [
        box["value"] for box in form.find_all("input", attrs={"name": "scopes", "checked": True})
    ]
    assert sorted(checked) == sorted(expected_scopes)
    assert form.find("input", attrs={"name": "rate_limit"})["value"] == rate_limit
    assert form.find("input", attrs={"name": "label"})["value"] == "Warehouse"
    assert form.find("select", id="preset").find("option", selected=True)["value"] == slug


def test_the_preset_list_names_only_presets_with_registered_scopes(signed_in: FlaskClient) -> None:
    options = [
        text(o) for o in html(signed_in.get(NEW)).find("select", id="preset").find_all("option")
    ]

    assert options == [
        "No preset",
        "Storefront (publishable, 600/min)",
        "Mobile app (publishable, 300/min)",
        "Analytics dashboard (secret, 60/min)",
        "Order fulfilment (secret, 120/min)",
        "Inventory sync (secret, 300/min)",
        "Customer portal (publishable, 300/min)",
        "Webhook management (secret, 60/min)",
    ]


def test_an_unknown_preset_changes_nothing(signed_in: FlaskClient) -> None:
    form = swap_form(signed_in, key_type="publishable", label="Kept", preset="nope", apply="preset")

    assert form.find("input", attrs={"name": "key_type", "checked": True})["value"] == "publishable"
    assert form.find("input", attrs={"name": "rate_limit"})["value"] == "60"


# --- focus, the error summary and Remove buttons --------------------------------------------


@BOTH
def test_add_origin_marks_the_new_field_for_focus(signed_in: FlaskClient, htmx: bool) -> None:
    form = key_form(**{"allowed_origins-0": "https://a.example.com", "add": "origin"})

    soup = html(post(signed_in, NEW, form, htmx=htmx))

    new_field = soup.find("input", attrs={"name": "allowed_origins-1"})
    assert new_field.has_attr("autofocus") and new_field.has_attr("data-focus-now")
    assert not soup.find("input", attrs={"name": "allowed_origins-0"}).has_attr("autofocus")


@BOTH
def test_remove_takes_out_one_origin_row_and_writes_nothing(
    signed_in: FlaskClient, htmx: bool
) -> None:
    rows = {
        "allowed_origins-0": "https://a.example.com",
        "allowed_origins-1": "https://b.example.com",
        "allowed_origins-2": "https://c.example.com",
    }

    response = post(signed_in, NEW, key_form(**rows, remove="origin-1"), htmx=htmx)

    assert response.status_code == 200 and count(ApiKey) == 0
    soup = html(response)
    values = [field["value"] for field in soup.select("#origins input[name^=allowed_origins-]")]
    assert values == ["https://a.example.com", "https://c.example.com"]
    assert soup.find("input", attrs={"name": "allowed_origins-1"}).has_attr("autofocus")
    buttons = soup.select("#origins button[name=remove]")
    assert [b["value"] for b in buttons] == ["origin-0", "origin-1"]
    assert text(buttons[0]) == "Remove origin 1"


def test_remove_on_the_edit_form_drops_an_ip_range_until_saved(
    signed_in: FlaskClient, user: User
) -> None:
    key, _ = make_key(user, "secret", allowed_ip_ranges=["10.0.0.0/8", "192.0.2.0/24"])
    url = f"/settings/api-keys/{key.id}/edit"
    form = {
        "label": key.label, "scopes": list(key.scopes), "rate_limit": "60",
        "allowed_ip_ranges-0": "10.0.0.0/8", "allowed_ip_ranges-1": "192.0.2.0/24",
    }  # fmt: skip

    shown = html(post(signed_in, url, {**form, "remove": "ip_range-0"}))
    assert [f["value"] for f in shown.select("#ip-ranges input")] == ["192.0.2.0/24"]
    db.session.refresh(key)
    assert key.allowed_ip_ranges == ["10.0.0.0/8", "192.0.2.0/24"]  # not saved yet
    del form["allowed_ip_ranges-1"]
    form["allowed_ip_ranges-0"] = "192.0.2.0/24"
    assert post(signed_in, url, form).status_code == 303
    db.session.refresh(key)
    assert key.allowed_ip_ranges == ["192.0.2.0/24"]


@BOTH
def test_errors_are_summarised_at_the_top_with_links_to_each_field(
    signed_in: FlaskClient, htmx: bool
) -> None:
    form = key_form(label="", rate_limit="0", **{"allowed_origins-0": "ftp://nope"})

    response = post(signed_in, NEW, form, htmx=htmx)

    assert response.status_code == 422
    soup = html(response)
    summary = soup.find(id="error-summary")
    assert summary["role"] == "alert" and summary.has_attr("autofocus")
    assert summary.find_parent("form")["id"] == "key-form"
    links = {a["href"]: text(a) for a in summary.find_all("a")}
    assert set(links) == {"#label", "#allowed_origins-0", "#rate_limit"}
    for href in links:
        assert soup.find(id=href[1:]) is not None  # each link lands on its field
    assert "Label:" in links["#label"] and "Origin 1:" in links["#allowed_origins-0"]
    assert "There are 3 problems" in text(summary)


def test_a_valid_form_has_no_error_summary(signed_in: FlaskClient) -> None:
    assert html(signed_in.get(NEW)).find(id="error-summary") is None


# --- the audit log in sentences, filtered, paged and exported ---------------------------------


def sentences(soup: BeautifulSoup) -> list[str]:
    """The audit log's event sentences, newest first, as read."""
    return [" ".join(cell.get_text("").split()) for cell in soup.select("td.sentence")]


@BOTH
def test_audit_events_read_as_sentences_with_links(
    signed_in: FlaskClient, user: User, market: Market, htmx: bool
) -> None:
    actor = keys.Actor(name=user.email, user_id=user.id)
    old, _ = make_key(user, "secret", label="Sync", allowed_ip_ranges=["192.0.2.0/24"])
    keys.update_key(
        old,
        keys.KeySettings(
            label="Nightly sync", scopes=["orders:read"], market_id=market.id,
            allowed_ip_ranges=["192.0.2.0/24", "10.0.0.0/8"], rate_limit=120,
        ),
        actor,
    )  # fmt: skip
    new, _ = keys.rotate_key(old, "1h", actor)
    db.session.refresh(old)

    soup = page_or_fragment(get(signed_in, "/settings/audit", htmx), htmx)

    created_by_rotation, rotated, updated, created = sentences(soup)
    stops = old.revoked_at.strftime("%Y-%m-%d %H:%M")
    assert (
        rotated
        == f"Rotated; replaced by {new.masked}, old key stops at {stops} UTC (1 hour of grace)."
    )
    assert created_by_rotation == f"Created by rotating {old.masked}, with scopes orders:read."
    assert updated == (
        "Updated: label changed from “Sync” to “Nightly sync”; scopes removed products:read; "
        "market changed from all markets to US; allowed IP ranges added 10.0.0.0/8; "
        "rate limit changed from 60 per minute to 120 per minute."
    )
    assert created.startswith("Created, with scopes")
    links = soup.select("td.sentence a")
    assert links[0]["href"] == f"/settings/api-keys/{old.id}"
    assert links[1]["href"] == f"/settings/api-keys/{new.id}"
    assert "[" not in text(soup.find("tbody")) and "replaced by:" not in text(soup.find("tbody"))


@BOTH
def test_audit_log_filters_by_key_action_and_date(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    first, _ = make_key(user, "secret", label="First")
    second, _ = make_key(user, "secret", label="Second")
    keys.revoke_key(second, keys.Actor(name=user.email))
    old_event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.api_key_id == first.id)
    ).one()
    old_event.created_at = utcnow() - timedelta(days=10)
    db.session.commit()
    today = utcnow().date()

    def shown(query: str) -> list[str]:
        soup = page_or_fragment(get(signed_in, f"/settings/audit?{query}", htmx), htmx)
        return [
            f"{text(row.select_one('td.sentence strong'))} {text(row.find_all('td')[2].find('a'))}"
            for row in soup.select("tbody tr")
            if row.select_one("td.sentence")
        ]

    assert shown("") == ["Revoked Second", "Created Second", "Created First"]
    assert shown(f"key={second.id}") == ["Revoked Second", "Created Second"]
    assert shown("action=created") == ["Created Second", "Created First"]
    assert shown(f"since={today.isoformat()}") == ["Revoked Second", "Created Second"]
    assert shown(f"until={(today - timedelta(days=5)).isoformat()}") == ["Created First"]
    assert shown("key=999999&action=bogus&since=yesterday") == shown("")
    empty = html(signed_in.get("/settings/audit?action=expired"))
    assert "No events match" in text(empty.find("tbody"))
    form = html(signed_in.get(f"/settings/audit?key={first.id}")).find("form", class_="filters")
    assert form.find("select", attrs={"name": "key"}).find("option", selected=True)["value"] == str(
        first.id
    )


def test_audit_paging_keeps_the_filters(signed_in: FlaskClient, user: User) -> None:
    key, _ = make_key(user, "secret", label="Busy")
    for limit in range(2, 60):
        keys.update_key(
            key, keys.KeySettings(label="Busy", scopes=list(key.scopes), rate_limit=limit),
            keys.Actor(name=user.email),
        )  # fmt: skip

    first = html(signed_in.get("/settings/audit?action=updated"))
    older = first.find("a", string="Older events")["href"]

    assert "action=updated" in older
    second = html(signed_in.get(older))
    assert len(second.select("td.sentence")) == 8
    assert all(s.startswith("Updated") for s in sentences(second))


def test_audit_csv_exports_the_filtered_log(signed_in: FlaskClient, user: User) -> None:
    key, _ = make_key(user, "secret", label='=HYPERLINK("http://evil.test")')
    keys.revoke_key(key, keys.Actor(name=user.email, ip="203.0.113.9"))

    response = signed_in.get("/settings/audit.csv?action=revoked")

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="audit-log.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["id", "time", "action", "key_id", "key", "label", "actor", "ip", "details"]
    [row] = rows[1:]
    assert row[2:5] == ["revoked", str(key.id), key.masked]
    assert row[5] == '\'=HYPERLINK("http://evil.test")'  # never a formula in a spreadsheet
    assert row[6:8] == [user.email, "203.0.113.9"]
    assert json.loads(row[8]) == {"reason": "revoked"}
    link = html(signed_in.get("/settings/audit?action=revoked")).find("a", string="Export CSV")
    assert link["href"] == "/settings/audit.csv?action=revoked"
