"""Every page of the demo store in Chromium: no console error, no serious or critical axe-core
violation, and a screenshot at desktop and phone widths (tests/browser/screenshots/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, open_tab, run_axe, screenshot


def _fill_errors(tab: Any) -> None:
    tab.get_by_label("Label").fill("")
    tab.locator("[name='allowed_origins-0']").fill("shop.example.com/path")
    tab.get_by_role("button", name="Create key").click()
    tab.locator(".field-errors").first.wait_for()


def _choose_secret(tab: Any) -> None:
    tab.get_by_label("Secret: server scripts only").check()
    tab.locator("input[value='orders:write']:not([disabled])").wait_for()


def _reveal(tab: Any) -> None:
    tab.get_by_label("Label").fill("Screenshot key")
    tab.get_by_role("button", name="Create key").click()
    tab.get_by_role("dialog").wait_for()


# name, path, h1 (start of), signed in, action after loading
PAGES: list[tuple[str, str, str, bool, Callable[[Any], None] | None]] = [
    ("login", "/auth/login", "Sign in", False, None),
    ("register", "/auth/register", "Create a store account", False, None),
    ("check-inbox", "/auth/check-inbox", "Check your inbox", False, None),
    ("not-found", "/settings/nothing-here", "Page not found", False, None),
    ("method-not-allowed", "/auth/logout", "Method not allowed", False, None),
    ("keys", "/settings/api-keys", "API keys", True, None),
    ("new-key", "/settings/api-keys/new", "New API key", True, None),
    ("new-secret-key", "/settings/api-keys/new", "New API key", True, _choose_secret),
    ("new-key-errors", "/settings/api-keys/new", "New API key", True, _fill_errors),
    ("reveal", "/settings/api-keys/new", "API keys", True, _reveal),
    ("key-page", "/settings/api-keys/{storefront}", "Storefront", True, None),
    ("rotated-key-page", "/settings/api-keys/{old}", "Warehouse sync", True, None),
    ("edit", "/settings/api-keys/{rotated}/edit", "Edit key", True, None),
    ("rotate", "/settings/api-keys/{rotated}/rotate", "Rotate key", True, None),
    ("revoke", "/settings/api-keys/{rotated}/revoke", "Revoke key", True, None),
    ("markets", "/settings/markets", "Markets", True, None),
    ("market-rename", "/settings/markets/{market}/rename", "Rename market", True, None),
    ("market-keys", "/settings/markets/{market}/api-keys", "API keys of", True, None),
    ("audit", "/settings/audit", "Audit log", True, None),
    ("usage", "/settings/usage", "Usage", True, None),
    ("key-usage", "/settings/api-keys/{storefront}/usage", "Usage of Storefront", True, None),
    ("two-factor", "/account/two-factor", "Two-factor sign-in", True, None),
]

EXPECTED_STATUS = {"not-found": 404, "method-not-allowed": 405, "new-key-errors": 422}


@pytest.mark.parametrize(
    ("name", "path", "heading", "signed_in", "action"), PAGES, ids=[page[0] for page in PAGES]
)
def test_page_is_accessible_and_photographed(
    browser: Any,
    demo: dict[str, Any],
    name: str,
    path: str,
    heading: str,
    signed_in: bool,
    action: Callable[[Any], None] | None,
) -> None:
    state = demo["state"] if signed_in else None
    # Chromium logs every 4xx answer as a console error; error pages and forms with errors are 4xx.
    status = EXPECTED_STATUS.get(name)
    expected = rf"^Failed to load resource: .* status of {status} " if status else None
    with open_tab(browser, expected_errors=expected, storage_state=state) as tab:
        tab.goto(demo["base_url"] + path.format(**demo))
        if action:
            # The create form is swapped for the chosen type's right after loading; typing
            # before that lands would be replaced by the empty form.
            tab.wait_for_load_state("networkidle")
            action(tab)
        assert tab.get_by_role("heading", level=1).first.inner_text().startswith(heading)

        violations = run_axe(tab)

        assert violations == [], json.dumps(violations, indent=1)
        assert_no_sideways_scroll(tab, f"{name} at 1280 px")
        screenshot(tab, f"{name}-desktop")
        tab.set_viewport_size(PHONE)
        assert_no_sideways_scroll(tab, f"{name} at 390 px")
        screenshot(tab, f"{name}-phone")
        tab.set_viewport_size(DESKTOP)


def assert_no_sideways_scroll(tab: Any, where: str) -> None:
    """The page is no wider than the window (wide tables scroll inside their own box)."""
    widths = tab.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    sticking_out = tab.evaluate(
        """() => [...document.querySelectorAll('main *, header *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5)
            .map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`)"""
    )
    assert widths[0] <= widths[1], f"{where}: the page is {widths[0]} px wide: {sticking_out}"
