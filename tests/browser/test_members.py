"""Members in Chromium: an owner invites a viewer, who accepts in another browser and sees only
what a viewer may (no key buttons, no key value, no member controls)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from portal.mail import saved_mails
from tests.browser.conftest import PHONE, SCREENSHOTS, open_tab, sign_in
from tests.conftest import PASSWORD, make_key, make_user


def _last_invitation_path(app: Flask, email: str) -> str:
    """The invitation link in the last mail to `email`."""
    mails = [mail for mail in saved_mails(app.config["MAIL_DIR"]) if mail["To"] == email]
    body = mails[-1].get_body(("plain",)).get_content()
    return re.search(r"(/invitations/[A-Za-z0-9_-]+)", body).group(1)


def test_invite_a_viewer_who_accepts_in_another_browser(
    page: Any, browser: Any, live_app: tuple[Flask, str]
) -> None:
    app, base_url = live_app
    with app.app_context():
        owner = make_user("team-owner@shop.test", "Team Shop")
        key, _ = make_key(owner, "publishable", label="Team storefront")
        token = key.publishable_token
        key_id = key.id
    sign_in(page, base_url, "team-owner@shop.test")
    page.get_by_role("link", name="Members").click()
    page.get_by_role("heading", name="Members").wait_for()
    page.get_by_label("Email", exact=True).fill("team-viewer@shop.test")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to team-viewer@shop.test").wait_for()
    assert "team-viewer@shop.test" in page.locator("table").nth(1).inner_text()

    with open_tab(browser, expected_errors=r"status of 403") as guest:  # the refused revoke page
        guest.goto(base_url + _last_invitation_path(app, "team-viewer@shop.test"))
        assert "invited team-viewer@shop.test as viewer" in guest.inner_text("main")
        guest.get_by_label("Password").fill(PASSWORD)
        guest.get_by_role("button", name="Join Team Shop").click()
        guest.wait_for_url(f"{base_url}/settings/api-keys")

        assert guest.get_by_role("link", name="Team storefront").is_visible()
        assert guest.get_by_role("link", name="New API key").count() == 0
        guest.get_by_role("link", name="Team storefront").click()
        guest.get_by_role("heading", name="Team storefront").wait_for()
        assert guest.get_by_role("link", name="Revoke key").count() == 0
        assert token not in guest.content()
        guest.goto(f"{base_url}/settings/api-keys/{key_id}/revoke")
        assert "Not allowed" in guest.inner_text("main")
        guest.goto(f"{base_url}/settings/members")
        assert guest.get_by_role("button", name="Send invitation").count() == 0

    page.reload()
    assert "team-viewer@shop.test" in page.locator("table").first.inner_text()
    # On a phone the members are cards: every control on screen, no sideways scroll.
    page.set_viewport_size(PHONE)
    page.reload()
    tables = page.locator("table")
    for index in range(tables.count()):
        fits = tables.nth(index).evaluate("table => table.scrollWidth <= table.clientWidth + 1")
        assert fits, f"table {index} scrolls sideways at 390 px"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SCREENSHOTS / "members-phone.png"), full_page=True, caret="initial")

    # Removing asks first; Cancel keeps the member, the confirmation removes them.
    page.get_by_role("link", name="Remove team-viewer@shop.test").click()
    page.get_by_role("heading", name="Remove member").wait_for()
    assert "Remove team-viewer@shop.test (viewer) from Team Shop?" in page.inner_text("main")
    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("heading", name="Members").wait_for()
    assert "team-viewer@shop.test" in page.locator("table").first.inner_text()
    page.get_by_role("link", name="Remove team-viewer@shop.test").click()
    page.get_by_role("button", name="Remove member").click()
    page.get_by_text("team-viewer@shop.test is no longer a member").wait_for()
    assert "team-viewer@shop.test" not in page.locator("table").first.inner_text()
