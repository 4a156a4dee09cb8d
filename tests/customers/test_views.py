"""The portal's customer pages, with and without htmx: list, search, paging, one customer,
Sign out everywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import User
from portal.customers import service as customers
from portal.customers.models import CustomerSession
from portal.extensions import db
from portal.store import service as store
from tests.customers.conftest import register
from tests.factories import add_product
from tests.helpers import HX, assert_fragment, assert_full_page, html, text
from tests.test_html_validity import HTMX_ATTRIBUTE, VNU

# As long as a name may be (120 characters).
LONG_NAME = ("Maximiliane Adelheid Wilhelmina von Hohenzollern-Sigmaringen " * 2)[:120]


def _get(client: FlaskClient, url: str, htmx: bool) -> Any:
    return client.get(url, headers=HX if htmx else {})


def _csrf(client: FlaskClient, customer_id: int) -> str:
    form = html(client.get(f"/settings/customers/{customer_id}")).find(
        "form", action=f"/settings/customers/{customer_id}/sign-out"
    )
    assert form is not None
    return form.find("input", attrs={"name": "csrf_token"})["value"]


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/settings/customers")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_list_shows_registered_shoppers_and_guests(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    register(user.merchant_id, "ada@example.com", name=LONG_NAME.strip())
    product = add_product(user)
    tenant = store.Tenant(user.merchant_id)
    cart = store.create_cart(tenant, {"items": [{"product_id": product.id}]})
    store.checkout(tenant, {"cart_id": cart.id, "email": "guest@example.com"})

    response = _get(signed_in, "/settings/customers", htmx)
    assert response.status_code == 200
    soup = assert_fragment(response, "customer-list") if htmx else assert_full_page(response)
    rows = [[text(cell) for cell in row.find_all("td")] for row in soup.select("tbody tr")]
    assert [row[0] for row in rows] == ["guest@example.com", "ada@example.com"]
    assert rows[0][1:4] == ["—", "Guest", "1"]
    assert rows[1][1:4] == [LONG_NAME.strip(), "Registered", "0"]
    if not htmx:
        assert soup.find("a", attrs={"aria-current": "page"}).get_text() == "Customers"


def test_search_and_paging(signed_in: FlaskClient, user: User) -> None:
    for index in range(30):
        register(user.merchant_id, f"shopper{index:02d}@example.com", name=f"Shopper {index:02d}")
    register(user.merchant_id, "grace@example.com", name="Grace Brewster")

    first = html(signed_in.get("/settings/customers"))
    assert len(first.select("tbody tr")) == 25
    next_link = first.find("a", rel="next")
    assert next_link is not None and first.find("a", rel="prev") is None
    second = html(signed_in.get(next_link["href"]))
    assert len(second.select("tbody tr")) == 6
    assert second.find("a", rel="next") is None

    found = assert_fragment(
        signed_in.get("/settings/customers?q=brewster", headers=HX), "customer-list"
    )
    assert [text(row.find("td")) for row in found.select("tbody tr")] == ["grace@example.com"]
    nothing = html(signed_in.get("/settings/customers?q=zebra"))
    assert "No customer matches “zebra”." in text(nothing.find("tbody"))


def test_the_list_shows_only_this_merchants_customers(
    signed_in: FlaskClient, user: User, other_user: User
) -> None:
    register(other_user.merchant_id, "theirs@example.com")
    soup = html(signed_in.get("/settings/customers"))
    assert "theirs@example.com" not in soup.get_text()


def test_names_are_escaped(signed_in: FlaskClient, user: User) -> None:
    register(user.merchant_id, "ada@example.com", name="<script>alert(1)</script>")
    body = signed_in.get("/settings/customers").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_customers_page_shows_orders_and_open_sessions(
    signed_in: FlaskClient, user: User, htmx: bool
) -> None:
    signed_in_shopper = register(user.merchant_id, "ada@example.com")
    customers.sign_in_with_password(
        user.merchant_id,
        "ada@example.com",
        "plum jam on toast",
        customers.Client(ip="203.0.113.5", user_agent="Safari on iPhone"),
    )
    product = add_product(user, price=2599)
    tenant = store.Tenant(user.merchant_id)
    cart = store.create_cart(
        tenant, {"items": [{"product_id": product.id}]}, customer_id=signed_in_shopper.customer.id
    )
    order = store.checkout(tenant, {"cart_id": cart.id, "email": "ada@example.com"}).order

    url = f"/settings/customers/{signed_in_shopper.customer.id}"
    response = _get(signed_in, url, htmx)
    assert response.status_code == 200
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    assert text(soup.find("h1")) == "ada@example.com"
    tables = soup.find_all("table")
    orders = [[text(td) for td in row.find_all("td")] for row in tables[0].select("tbody tr")]
    assert orders == [[f"#{order.id}", "Pending", "25.99 USD", "—", orders[0][4]]]
    sessions = [[text(td) for td in row.find_all("td")] for row in tables[1].select("tbody tr")]
    assert [row[:3] for row in sessions] == [
        ["Safari on iPhone", "203.0.113.5", "Password"],
        ["Firefox on Linux", "198.51.100.7", "Registration"],
    ]
    assert all(row[3].endswith("UTC") and row[4].endswith("UTC") for row in sessions)
    assert soup.find("button", string="Sign out everywhere") is not None


def test_another_merchants_customer_is_404(signed_in: FlaskClient, other_user: User) -> None:
    theirs = register(other_user.merchant_id, "theirs@example.com")
    assert signed_in.get(f"/settings/customers/{theirs.customer.id}").status_code == 404
    mine_token = _csrf_from_any_page(signed_in)
    response = signed_in.post(
        f"/settings/customers/{theirs.customer.id}/sign-out", data={"csrf_token": mine_token}
    )
    assert response.status_code == 404
    assert customers.authenticate(other_user.merchant_id, theirs.access_token)


def _csrf_from_any_page(client: FlaskClient) -> str:
    soup = html(client.get("/settings/markets"))
    return soup.find("input", attrs={"name": "csrf_token"})["value"]


def test_sign_out_everywhere_without_csrf_changes_nothing(
    signed_in: FlaskClient, user: User
) -> None:
    shopper = register(user.merchant_id, "ada@example.com")
    response = signed_in.post(f"/settings/customers/{shopper.customer.id}/sign-out")
    assert response.status_code == 400
    assert customers.authenticate(user.merchant_id, shopper.access_token)


def test_sign_out_everywhere_without_javascript(
    app: Flask, signed_in: FlaskClient, user: User
) -> None:
    first = register(user.merchant_id, "ada@example.com")
    second = customers.sign_in_with_password(
        user.merchant_id, "ada@example.com", "plum jam on toast"
    )
    url = f"/settings/customers/{first.customer.id}"

    response = signed_in.post(
        url + "/sign-out", data={"csrf_token": _csrf(signed_in, first.customer.id)}
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith(url)
    page = html(signed_in.get(url))
    assert "ada@example.com is signed out everywhere (2 sessions ended)." in text(
        page.find(class_="flashes")
    )
    assert "Not signed in anywhere." in page.get_text()
    for shopper in (first, second):
        with pytest.raises(customers.InvalidToken):
            customers.authenticate(user.merchant_id, shopper.access_token)
    db.session.expire_all()
    assert {s.revoked_reason for s in db.session.query(CustomerSession)} == {
        "signed_out_everywhere"
    }


def test_sign_out_everywhere_with_htmx_answers_the_page_fragment(
    signed_in: FlaskClient, user: User
) -> None:
    shopper = register(user.merchant_id, "ada@example.com")
    url = f"/settings/customers/{shopper.customer.id}"
    response = signed_in.post(
        url + "/sign-out", data={"csrf_token": _csrf(signed_in, shopper.customer.id)}, headers=HX
    )
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == url
    soup = assert_fragment(response)
    assert "signed out everywhere (1 session ended)" in soup.get_text()
    assert soup.find("button", string="Sign out everywhere") is None


@pytest.mark.skipif(shutil.which("java") is None, reason="java is not installed (vnu needs it)")
def test_the_customer_pages_are_valid_html(
    signed_in: FlaskClient, user: User, tmp_path: Path
) -> None:
    shopper = register(user.merchant_id, "ada@example.com", name="Ada & <Lovelace>")
    for index in range(26):
        register(user.merchant_id, f"shopper{index:02d}@example.com")
    pages = {
        "customers": signed_in.get("/settings/customers?page=2"),
        "customers-empty-search": signed_in.get("/settings/customers?q=zebra"),
        "customer": signed_in.get(f"/settings/customers/{shopper.customer.id}"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        (tmp_path / f"{name}.html").write_text(response.get_data(as_text=True), encoding="utf-8")
    result = subprocess.run(
        ["java", "-jar", str(VNU), "--format", "json", "--stdout", "--errors-only", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    errors = [
        f"{Path(message.get('url', '')).name}:{message.get('lastLine')}: {message['message']}"
        for message in json.loads(result.stdout)["messages"]
        if message.get("type") in ("error", "non-document-error")
        and not HTMX_ATTRIBUTE.match(message["message"])
    ]
    assert not errors, "\n".join(errors)
