"""Script typed into every text field runs nowhere: Chromium opens no alert on any page."""

from __future__ import annotations

from typing import Any

from flask import Flask

from portal.accounts import service as accounts
from tests.browser.conftest import api_get, sign_in
from tests.conftest import make_key, make_user

PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def test_no_payload_runs_on_any_page(page: Any, live_app: tuple[Flask, str]) -> None:
    app, base_url = live_app
    with app.app_context():
        user = make_user("xss@shop.test", PAYLOAD)
        market = accounts.add_market(user.merchant_id, "XS", PAYLOAD)
        key, token = make_key(
            user, "publishable", label=PAYLOAD, description=PAYLOAD, market_id=market.id
        )
        ids = {"key": key.id, "market": market.id}
    assert api_get(base_url, "/api/v1/key", token, origin="https://x.test/" + PAYLOAD) == 200
    app.extensions["usage_recorder"].flush()
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page.add_init_script("window.__ran = []; window.alert = (m) => window.__ran.push(m);")
    sign_in(page, base_url, "xss@shop.test")

    for path in [
        "/settings/api-keys",
        "/settings/api-keys/{key}",
        "/settings/api-keys/{key}/edit",
        "/settings/api-keys/{key}/rotate",
        "/settings/api-keys/{key}/revoke",
        "/settings/markets",
        "/settings/markets/{market}/api-keys",
        "/settings/audit",
        "/settings/usage",
    ]:
        page.goto(base_url + path.format(**ids))
        assert PAYLOAD in page.locator("body").inner_text(), path  # shown, as text
        assert page.evaluate("window.__ran") == [], path
    assert alerts == []
