"""A live portal on a local port and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select
from werkzeug.serving import make_server

from portal import create_app
from portal.accounts.models import Market, User
from portal.demo import DEMO_EMAIL, DEMO_PASSWORD, seed
from portal.extensions import db
from portal.keys import service as keys
from portal.keys.models import ApiKey
from tests.conftest import PASSWORD, test_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test here as a browser test; skip them only where Chromium is absent."""
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists() and not os.environ.get("PORTAL_REQUIRE_BROWSER"):
                item.add_marker(pytest.mark.skip(reason="Debian's chromium is not installed"))


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str]]:
    """The portal served on 127.0.0.1 from a thread, on its own migrated SQLite database."""
    database = tmp_path_factory.mktemp("browser-db") / "portal.db"
    config = test_config(f"sqlite:///{database}")
    config.pop("SERVER_NAME")
    app = create_app(config)
    with app.app_context():
        upgrade()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@contextmanager
def open_tab(browser: Any, expected_errors: str | None = None, **options: Any) -> Iterator[Any]:
    """A tab in a fresh context that may use the clipboard; console errors fail the test, except
    those matching the `expected_errors` pattern."""
    options.setdefault("viewport", DESKTOP)
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"], **options)
    tab = context.new_page()
    errors: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and not (
            expected_errors and re.search(expected_errors, message.text)
        ):
            errors.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
        # What the page logged while the test used it; closing the context below aborts
        # in-flight requests (the usage panel polls), which is our doing, not the page's.
        seen = list(errors)
    finally:
        context.close()
    assert seen == [], f"console errors: {seen}"


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh browser tab that may use the clipboard; console errors fail the test."""
    with open_tab(browser) as tab:
        yield tab


def sign_in(page: Any, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form and land on the keys list."""
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/settings/api-keys")


def api_get(base_url: str, path: str, token: str, origin: str | None = None) -> int:
    """Call the live API as a storefront or a server would; the status."""
    headers = {"Authorization": f"Bearer {token}"}
    if origin:
        headers["Origin"] = origin
    request = urllib.request.Request(base_url + path, headers=headers)  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


@pytest.fixture(scope="session")
def demo(live_app: tuple[Flask, str], browser: Any) -> Iterator[dict[str, Any]]:
    """The demo store with calls, a rotated key in its grace period and a revoked key; and the
    signed-in state of its owner's browser."""
    app, base_url = live_app
    with app.app_context():
        seed()
        user = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
        actor = keys.Actor(name=DEMO_EMAIL, user_id=user.id, ip="127.0.0.1")
        market = db.session.scalar(select(Market).where(Market.merchant_id == user.merchant_id))
        storefront = db.session.scalar(
            select(ApiKey).where(
                ApiKey.label == "Storefront", ApiKey.merchant_id == user.merchant_id
            )
        )
        token = storefront.publishable_token
        old, _ = keys.create_key(
            user.merchant_id,
            "secret",
            keys.KeySettings(
                label="Warehouse sync",
                description="Pushes stock levels every hour.",
                allowed_ip_ranges=["203.0.113.0/24"],
                market_id=market.id,
            ),
            actor,
        )
        rotated, _ = keys.rotate_key(old, "24h", actor)
        gone, _ = keys.create_key(
            user.merchant_id, "publishable", keys.KeySettings(label="Old storefront"), actor
        )
        keys.revoke_key(gone, actor)
        # A store that has grown: many keys, some with the longest labels the form takes.
        for number in range(64):
            secret = number % 3 == 0
            keys.create_key(
                user.merchant_id,
                "secret" if secret else "publishable",
                keys.KeySettings(
                    label=(
                        f"Wholesale partner feed {number:02d}: Nordic and Baltic distributors "
                        "(nightly)"
                    )[: keys.LABEL_MAX]
                    if number % 4 == 0
                    else f"Integration {number:02d}",
                    allowed_origins=[] if secret or number % 5 else ["https://shop.example.com"],
                    market_id=market.id if number % 2 else None,
                ),
                actor,
            )
        ids = {
            "storefront": storefront.id,
            "old": old.id,
            "rotated": rotated.id,
            "market": market.id,
        }
    statuses = [
        api_get(base_url, path, token, "http://localhost:8000")
        for path in ["/api/v1/catalog/products"] * 6
        + ["/api/v1/catalog/products/999999", "/api/v1/admin/orders", "/api/v1/key"]
    ]
    assert statuses == [200] * 6 + [404, 403, 200]
    app.extensions["usage_recorder"].flush()
    with open_tab(browser) as tab:
        sign_in(tab, base_url, DEMO_EMAIL, DEMO_PASSWORD)
        state = tab.context.storage_state()
    yield {**ids, "state": state, "base_url": base_url}


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now.

    The page's CSP (script-src 'self') refuses inline scripts, so axe is not injected as one:
    Playwright answers a same-origin URL with the npm package's file, which the CSP allows
    like any of the portal's own scripts. The policy stays on while axe runs.
    """
    origin = re.match(r"https?://[^/]+", page.url).group(0)
    url = f"{origin}/__test__/axe.min.js"
    page.route(url, lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=url)
    results = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in results
        if violation["impact"] in ("serious", "critical")
    ]


def screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot and one of the first screenful under tests/browser/screenshots/
    (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-top.png"))
