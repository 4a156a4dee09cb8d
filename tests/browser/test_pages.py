"""The demo store's pages in Chromium, at desktop and phone widths (screenshots for the README)."""

from __future__ import annotations

import pytest
from flask import Flask

from portal.demo import DEMO_EMAIL, DEMO_PASSWORD, seed
from tests.browser.conftest import SCREENSHOTS

PAGES = [
    ("keys", "/settings/api-keys", "API keys"),
    ("new-key", "/settings/api-keys/new", "New API key"),
    ("markets", "/settings/markets", "Markets"),
    ("audit", "/settings/audit", "Audit log"),
]
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.mark.parametrize("width_name", WIDTHS)
def test_demo_pages_render_without_errors(
    page, live_app: tuple[Flask, str], width_name: str
) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        seed()
    page.set_viewport_size({"width": WIDTHS[width_name], "height": 900})
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/settings/api-keys")
    SCREENSHOTS.mkdir(exist_ok=True)
    for name, path, heading in PAGES:
        page.goto(base_url + path)
        assert page.get_by_role("heading", level=1).first.inner_text().startswith(heading)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width_name}.png"), full_page=True)
    page.goto(f"{base_url}/settings/api-keys")
    page.get_by_role("link", name="Storefront").click()
    page.get_by_role("heading", name="Audit events").wait_for()
    page.screenshot(path=str(SCREENSHOTS / f"key-page-{width_name}.png"), full_page=True)
