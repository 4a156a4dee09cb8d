"""Two-factor sign-in in Chromium: a member sets it up by typing the secret the page shows into
"their app" (pyotp here), keeps the recovery codes, signs out, signs in with a code, then once
with a recovery code. The set-up, codes and code pages pass axe, fit 1280 and 390 px, and are
photographed (tests/browser/screenshots/)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pyotp
from flask import Flask

from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, open_tab, run_axe
from tests.browser.conftest import sign_in as sign_in_with_password
from tests.browser.test_pages import assert_no_sideways_scroll
from tests.conftest import PASSWORD, make_user


def screenshot(tab: Any, name: str) -> None:
    """A full-page screenshot and one of the first screenful. Playwright hides the caret with an
    inline style, which the CSP refuses (a console error): keep the caret as it is."""
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, caret="initial")
    tab.screenshot(path=str(SCREENSHOTS / f"{name}-top.png"), caret="initial")


def _check_and_photograph(tab: Any, name: str) -> None:
    """No serious axe violation and no sideways scroll, at 1280 and 390 px; screenshots of both."""
    assert run_axe(tab) == [], json.dumps(run_axe(tab), indent=1)
    assert_no_sideways_scroll(tab, f"{name} at 1280 px")
    screenshot(tab, f"{name}-desktop")
    tab.set_viewport_size(PHONE)
    assert_no_sideways_scroll(tab, f"{name} at 390 px")
    assert run_axe(tab) == []
    screenshot(tab, f"{name}-phone")
    tab.set_viewport_size(DESKTOP)


def _sign_out(tab: Any) -> None:
    tab.locator(".account.wide-only").get_by_role("button", name="Sign out").click()
    tab.get_by_role("heading", name="Sign in").wait_for()


def _password_step(tab: Any, base_url: str, email: str) -> None:
    tab.goto(f"{base_url}/auth/login")
    tab.get_by_label("Email").fill(email)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{base_url}/auth/two-factor")
    tab.get_by_role("heading", name="Enter your code").wait_for()


def test_set_up_then_sign_in_with_a_code_and_with_a_recovery_code(
    browser: Any, live_app: tuple[Flask, str]
) -> None:
    app, base_url = live_app
    email = "two-factor@shop.test"
    with app.app_context():
        make_user(email, "Two Factor Shop")
    # Chromium logs the 422 of a wrong code as a console error: that one is expected.
    with open_tab(browser, expected_errors=r"status of 422") as tab:
        sign_in_with_password(tab, base_url, email)
        tab.locator(".account.wide-only").get_by_role("link", name="Two-factor").click()
        tab.get_by_role("heading", name="Set up with an authenticator app").wait_for()
        assert tab.get_by_role("img", name=re.compile("QR code")).is_visible()
        _check_and_photograph(tab, "two-factor-setup")

        secret = tab.locator("#totp-secret").inner_text().replace(" ", "")
        app_on_phone = pyotp.TOTP(secret)
        code_field = tab.get_by_label("6-digit code from your app")
        code_field.fill("000000" if app_on_phone.now() != "000000" else "111111")
        tab.get_by_role("button", name="Turn on").click()
        tab.locator(".field-errors").get_by_text("not right").wait_for()
        _check_and_photograph(tab, "two-factor-setup-error")
        tab.get_by_label("6-digit code from your app").fill(app_on_phone.now())
        tab.get_by_role("button", name="Turn on").click()
        tab.get_by_role("heading", name="Two-factor sign-in is on").wait_for()
        recovery_codes = tab.locator(".recovery-codes code").all_inner_texts()
        assert len(recovery_codes) == 10
        _check_and_photograph(tab, "two-factor-recovery-codes")
        tab.get_by_role("link", name="I saved them").click()
        tab.get_by_role("heading", name=re.compile("^On for")).wait_for()
        _check_and_photograph(tab, "two-factor-on")

        _sign_out(tab)
        _password_step(tab, base_url, email)
        _check_and_photograph(tab, "two-factor-code")
        # The code used to confirm cannot be used again: the app's next code (30 s of drift).
        tab.get_by_label("Authentication code").fill(app_on_phone.at(time.time() + 30))
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(f"{base_url}/settings/api-keys")

        _sign_out(tab)
        _password_step(tab, base_url, email)
        tab.get_by_label("Authentication code").fill(recovery_codes[0])
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(f"{base_url}/settings/api-keys")
        assert "signed in with a recovery code" in tab.inner_text("main")
        assert "9 left" in tab.inner_text("main")


def test_the_code_step_works_without_javascript(browser: Any, live_app: tuple[Flask, str]) -> None:
    app, base_url = live_app
    email = "two-factor-nojs@shop.test"
    with app.app_context():
        user = make_user(email, "No Script Shop")
        from portal.twofactor import service, totp

        secret = totp.new_secret()
        codes = service.enable(user, secret, totp.code_at(secret, time.time()))
    with open_tab(browser, expected_errors=r"status of 422", java_script_enabled=False) as tab:
        _password_step(tab, base_url, email)
        tab.get_by_label("Authentication code").fill("abcde-fghjk")
        tab.get_by_role("button", name="Sign in").click()
        tab.locator(".field-errors").get_by_text("not right").wait_for()
        _check_code_page_at_phone_width(tab)
        tab.get_by_label("Authentication code").fill(codes[1])
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(f"{base_url}/settings/api-keys")


def _check_code_page_at_phone_width(tab: Any) -> None:
    tab.set_viewport_size(PHONE)
    assert_no_sideways_scroll(tab, "two-factor code with an error at 390 px")
    screenshot(tab, "two-factor-code-error-phone")
    tab.set_viewport_size(DESKTOP)
