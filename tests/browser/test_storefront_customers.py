"""A storefront on another origin runs shopper accounts with `fetch` and only its publishable key:
register, sign in, buy, refresh once the access token has expired, read its orders, sign out."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from portal.extensions import db
from portal.store.models import Order, Product
from tests.browser.conftest import open_tab, run_axe, sign_in
from tests.conftest import make_key, make_user

ACCESS_SECONDS = 3

STOREFRONT = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Storefront with accounts</title></head>
<body><pre id="out">running</pre>
<script>
const params = new URLSearchParams(location.search);
const api = params.get("api") + "/api/v1";
const key = params.get("key");
const steps = [];
const session = {};

async function call(method, path, body) {
  const headers = {"Authorization": "Bearer " + key};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session.access) headers["X-Customer-Token"] = session.access;
  const response = await fetch(api + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {status: response.status, body: text ? JSON.parse(text) : null};
}

function keep(answer) {
  session.access = answer.body.access_token;
  session.refresh = answer.body.refresh_token;
}

// What a storefront's API helper does: on an expired access token, refresh once and retry.
async function shopperCall(method, path, body) {
  let answer = await call(method, path, body);
  if (answer.status === 401 && answer.body.error.code === "customer_token_expired") {
    steps.push("expired " + path);
    const renewed = await call("POST", "/customers/sessions/refresh",
                               {refresh_token: session.refresh});
    steps.push("refresh " + renewed.status);
    keep(renewed);
    answer = await call(method, path, body);
  }
  return answer;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run() {
  const email = "ada@example.com", password = "plum jam on toast";
  const registered = await call("POST", "/customers", {email, password, name: "Ada Lovelace"});
  steps.push("register " + registered.status + " " + registered.body.customer.email);
  session.access = null;
  const signedIn = await call("POST", "/customers/sessions", {email, password});
  steps.push("sign in " + signedIn.status + " " + signedIn.body.access_expires_in);
  keep(signedIn);
  const cart = await shopperCall("POST", "/carts",
                                 {items: [{product_id: Number(params.get("product"))}]});
  const checkout = await shopperCall("POST", "/checkouts", {cart_id: cart.body.id});
  steps.push("checkout " + checkout.status + " " + checkout.body.order.customer.email);
  await sleep(Number(params.get("wait")));
  const me = await shopperCall("GET", "/customers/me");
  steps.push("me " + me.status + " " + me.body.name);
  const orders = await shopperCall("GET", "/customers/me/orders");
  steps.push("orders " + orders.status + " " + orders.body.data.map((o) => o.id).join(","));
  const out = await shopperCall("DELETE", "/customers/sessions/current");
  steps.push("sign out " + out.status);
  const after = await call("GET", "/customers/me");
  steps.push("after " + after.status + " " + after.body.error.code);
  const stale = await call("POST", "/customers/sessions/refresh", {refresh_token: session.refresh});
  steps.push("refresh after sign out " + stale.status + " " + stale.body.error.code);
}

run()
  .catch((error) => steps.push("failed: " + error))
  .finally(() => { document.getElementById("out").textContent = JSON.stringify(steps); });
</script></body></html>"""


class StorefrontHandler(BaseHTTPRequestHandler):
    """Serves the storefront page on any path."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(STOREFRONT)))
        self.end_headers()
        self.wfile.write(STOREFRONT)

    def log_message(self, *_args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def storefront() -> Iterator[str]:
    """A second web server on another 127.0.0.1 port: another origin for the browser."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), StorefrontHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def short_access_tokens(live_app: tuple[Flask, str]) -> Iterator[None]:
    """Access tokens that expire after ACCESS_SECONDS, for this test only."""
    app, _ = live_app
    app.config["CUSTOMER_ACCESS_TOKEN_SECONDS"] = ACCESS_SECONDS
    yield
    app.config.pop("CUSTOMER_ACCESS_TOKEN_SECONDS")


def test_a_storefront_runs_shopper_accounts_with_fetch(
    browser: Any, live_app: tuple[Flask, str], storefront: str, short_access_tokens: None
) -> None:
    app, base_url = live_app
    with app.app_context():
        merchant = make_user("accounts@shop.test", "Accounts Shop")
        product = Product(
            merchant_id=merchant.merchant_id,
            name="Linen apron",
            price=2900,
            currency="USD",
            inventory=3,
            published=True,
        )
        db.session.add(product)
        db.session.commit()
        product_id, merchant_id = product.id, merchant.merchant_id
        _, token = make_key(merchant, "publishable", label="Shop", allowed_origins=[storefront])

    # Chromium logs each 401 on the console: the expired token and the two calls after sign-out,
    # which are the behaviour under test.
    with open_tab(browser, expected_errors=r"status of 401 \(UNAUTHORIZED\)") as tab:
        tab.goto(
            f"{storefront}/?api={quote(base_url)}&key={quote(token)}"
            f"&product={product_id}&wait={ACCESS_SECONDS * 1000 + 500}"
        )
        tab.wait_for_function(
            "document.getElementById('out').textContent !== 'running'", timeout=20_000
        )
        steps = json.loads(tab.locator("#out").inner_text())

    with app.app_context():
        (order_id,) = [
            order.id for order in db.session.query(Order).filter_by(merchant_id=merchant_id)
        ]
    assert steps == [
        "register 201 ada@example.com",
        f"sign in 201 {ACCESS_SECONDS}",
        "checkout 201 ada@example.com",
        "expired /customers/me",
        "refresh 201",
        "me 200 Ada Lovelace",
        f"orders 200 {order_id}",
        "sign out 204",
        "after 401 invalid_customer_token",
        "refresh after sign out 401 invalid_customer_token",
    ]


def test_a_merchant_finds_a_shopper_and_signs_them_out_everywhere(
    browser: Any, live_app: tuple[Flask, str]
) -> None:
    from portal.customers import service as customers

    app, base_url = live_app
    with app.app_context():
        merchant = make_user("support@shop.test", "Support Shop")
        shopper = customers.register(
            merchant.merchant_id,
            "grace@example.com",
            "plum jam on toast",
            "Grace Brewster",
            customers.Client(ip="203.0.113.8", user_agent="Safari on iPhone"),
        )
        customers.register(merchant.merchant_id, "ada@example.com", "plum jam on toast", "Ada")
        merchant_id, access_token = merchant.merchant_id, shopper.access_token

    with open_tab(browser) as tab:
        sign_in(tab, base_url, "support@shop.test")
        tab.get_by_role("link", name="Customers").click()
        tab.get_by_label("Email or name").fill("brewster")
        tab.get_by_role("button", name="Search").click()
        tab.wait_for_url("**/settings/customers?q=brewster")
        assert tab.locator("#customer-list tbody tr").count() == 1
        tab.get_by_role("link", name="grace@example.com").click()
        tab.get_by_role("heading", name="grace@example.com").wait_for()
        assert "Safari on iPhone" in tab.locator("table").nth(1).inner_text()
        assert run_axe(tab) == []
        tab.once("dialog", lambda dialog: dialog.accept())
        tab.get_by_role("button", name="Sign out everywhere").click()
        tab.get_by_text("grace@example.com is signed out everywhere (1 session ended).").wait_for()
        assert "Not signed in anywhere." in tab.locator("table").nth(1).inner_text()

    with app.app_context(), pytest.raises(customers.InvalidToken):
        customers.authenticate(merchant_id, access_token)
