"""The real flow in Chromium: sign in, create a secret key, copy it, revoke it, all through htmx."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.keys import tokens
from portal.keys.models import ApiKey
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import PASSWORD, make_key, make_user


def _sign_in(page, base_url: str, email: str) -> None:  # noqa: ANN001
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/settings/api-keys")


def test_create_copy_and_revoke_a_secret_key_without_reloading(
    page,
    live_app: tuple[Flask, str],  # noqa: ANN001
) -> None:
    app, base_url = live_app
    with app.app_context():
        user = make_user("browser@shop.test", "Browser Shop")
        make_key(user, "publishable", label="Storefront", allowed_origins=["https://shop.test"])
    _sign_in(page, base_url, "browser@shop.test")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "keys-list.png"), full_page=True)

    # From here on, htmx does the work: a full reload would lose this marker.
    page.evaluate("window.__noReload = 'still here'")
    page.get_by_role("link", name="New API key").click()
    page.get_by_label("Secret: server scripts only").check()
    page.wait_for_selector("#ip-ranges")  # htmx re-rendered the form for a secret key
    page.get_by_label("Label").fill("Nightly stock sync")
    page.get_by_role("button", name="Create key").click()

    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert "It will not be shown again" in dialog.inner_text()
    shown = page.locator("#revealed-key").input_value()
    assert tokens.parse_token(shown) is not None and shown.startswith("sk_live_")
    page.screenshot(path=str(SCREENSHOTS / "reveal-dialog.png"))
    dialog.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == shown

    with app.app_context():
        key = db.session.scalar(select(ApiKey).where(ApiKey.label == "Nightly stock sync"))
        assert key.key_hash == tokens.hash_token(shown, app.config["API_KEY_PEPPER"])
        key_id = key.id

    dialog.get_by_role("link", name="Go to the key's page").click()
    page.wait_for_url(f"{base_url}/settings/api-keys/{key_id}")
    page.get_by_role("heading", name="Audit events").wait_for()
    assert shown not in page.content()  # a secret key is never shown again
    page.get_by_role("link", name="Revoke key").click()
    page.wait_for_url(f"{base_url}/settings/api-keys/{key_id}/revoke")
    page.get_by_role("button", name="Revoke key").click()
    page.get_by_text(re.compile("is revoked. Requests with it now fail")).wait_for()
    assert "Revoked" in page.locator("h1 + p .badge-revoked").inner_text()
    assert page.evaluate("window.__noReload") == "still here"

    with app.app_context():
        assert db.session.get(ApiKey, key_id).state == "revoked"
