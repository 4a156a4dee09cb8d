"""A storefront on another origin calls the API with `fetch` and a publishable key: Chromium's own
CORS check lets the answer through when the key lists that origin, and blocks it otherwise."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from portal.extensions import db
from portal.store.models import Product
from tests.browser.conftest import open_tab
from tests.conftest import make_key, make_user

STOREFRONT = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Storefront</title></head>
<body><p id="out">loading</p>
<script>
const params = new URLSearchParams(location.search);
fetch(params.get("api") + "/api/v1/catalog/products", {
  headers: {"Authorization": "Bearer " + params.get("key")},
})
  .then((response) => response.json())
  .then((body) => {
    document.getElementById("out").textContent =
      "products: " + body.data.map((product) => product.name).join(", ");
  })
  .catch((error) => { document.getElementById("out").textContent = "blocked: " + error.name; });
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


@pytest.fixture(scope="module")
def shop(live_app: tuple[Flask, str]) -> Any:
    """A store with one published product."""
    app, _ = live_app
    with app.app_context():
        user = make_user("cors@shop.test", "Cors Shop")
        db.session.add(
            Product(
                merchant_id=user.merchant_id,
                name="Linen apron",
                price=2900,
                currency="USD",
                sku="APRON",
                inventory=3,
                published=True,
            )
        )
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
    return user


def visit(tab: Any, storefront: str, base_url: str, token: str) -> str:
    """Open the storefront page and wait for its script's verdict."""
    tab.goto(f"{storefront}/?api={quote(base_url)}&key={quote(token)}")
    tab.wait_for_function("document.getElementById('out').textContent !== 'loading'")
    return tab.locator("#out").inner_text()


def test_a_listed_origin_gets_the_products(
    browser: Any, live_app: tuple[Flask, str], storefront: str, shop: Any
) -> None:
    app, base_url = live_app
    with app.app_context():
        _, token = make_key(shop, "publishable", label="Shop", allowed_origins=[storefront])

    with open_tab(browser) as tab:
        assert visit(tab, storefront, base_url, token) == "products: Linen apron"


def test_an_unlisted_origin_is_blocked_by_the_browser(
    browser: Any, live_app: tuple[Flask, str], storefront: str, shop: Any
) -> None:
    app, base_url = live_app
    with app.app_context():
        key, token = make_key(
            shop, "publishable", label="Other shop", allowed_origins=["https://shop.example.com"]
        )
        key_id = key.id

    # Chromium reports the refusal on the console; that is the behaviour under test.
    with open_tab(browser, expected_errors=r"CORS policy|net::ERR_FAILED") as tab:
        failed: list[Any] = []
        tab.on("requestfailed", lambda request: failed.append(request))

        assert visit(tab, storefront, base_url, token) == "blocked: TypeError"

    assert [(request.method, request.url) for request in failed] == [
        ("GET", f"{base_url}/api/v1/catalog/products")
    ]
    # The API itself said no: the call is counted as denied for its origin.
    app.extensions["usage_recorder"].flush()
    with app.app_context():
        from portal.usage import stats

        usage = stats.summarize(merchant_id=shop.merchant_id, key_id=key_id)
        assert [(call.status, call.origin) for call in usage.recent] == [(403, storefront)]
