"""Accessibility beyond axe's page scan: the scan itself can fail, every control has a name,
the reveal is a real modal <dialog> with a name, and state badges say their state in words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from portal.database import utcnow
from portal.extensions import db
from portal.keys.models import ApiKey
from tests.browser.conftest import open_tab, run_axe, sign_in
from tests.conftest import make_key, make_user

UNNAMED_CONTROLS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href], [role=button]')]
  .filter(el => el.offsetParent !== null || el.closest('dialog[open]'))
  .filter(el => {
    const labelled = (el.labels && [...el.labels].some(l => l.textContent.trim()))
      || (el.getAttribute('aria-label') || '').trim()
      || (el.getAttribute('aria-labelledby') || '').split(' ').some(
           id => id && document.getElementById(id)?.textContent.trim());
    const ownText = ['BUTTON', 'A'].includes(el.tagName) && el.textContent.trim();
    return !(labelled || ownText);
  })
  .map(el => el.outerHTML.slice(0, 120))"""


def test_the_axe_scan_finds_what_it_should(page: Any, live_app: tuple[Flask, str]) -> None:
    """A control without a label, added on purpose, is reported: the scan really runs."""
    _, base_url = live_app
    page.goto(f"{base_url}/auth/login")
    assert run_axe(page) == []

    page.evaluate(
        "() => document.querySelector('form').append(Object.assign("
        "document.createElement('input'), {type: 'text', name: 'unlabelled'}))"
    )

    assert "label" in {violation["id"] for violation in run_axe(page)}


@pytest.mark.parametrize(
    "path",
    [
        "/settings/api-keys",
        "/settings/api-keys/new",
        "/settings/api-keys/new?key_type=secret",
        "/settings/api-keys/{key}/edit",
        "/settings/api-keys/{key}/rotate",
        "/settings/api-keys/{key}/revoke",
        "/settings/markets",
        "/settings/api-keys/{key}",
        "/account/two-factor",
    ],
)
def test_every_control_has_a_name(browser: Any, demo: dict[str, Any], path: str) -> None:
    with open_tab(browser, storage_state=demo["state"]) as tab:
        tab.goto(demo["base_url"] + path.format(key=demo["rotated"]))

        assert tab.evaluate(UNNAMED_CONTROLS) == []
        assert tab.locator("button, input:not([type=hidden]), select, textarea").count() > 0


def test_anonymous_forms_have_named_controls(page: Any, live_app: tuple[Flask, str]) -> None:
    _, base_url = live_app
    for path in ("/auth/login", "/auth/register"):
        page.goto(base_url + path)
        assert page.evaluate(UNNAMED_CONTROLS) == []


def test_the_reveal_is_a_named_modal_dialog(page: Any, live_app: tuple[Flask, str]) -> None:
    app, base_url = live_app
    with app.app_context():
        make_user("a11y-dialog@shop.test", "Dialog Shop")
    sign_in(page, base_url, "a11y-dialog@shop.test")
    page.goto(f"{base_url}/settings/api-keys/new?key_type=secret")
    # With htmx the page swaps in the form of the chosen type right after loading: typing before
    # that swap lands would be replaced by the empty form (CI, loaded, once posted no label).
    page.wait_for_load_state("networkidle")
    page.get_by_label("Label").fill("Reporting job")
    page.get_by_role("button", name="Create key").click()

    dialog = page.get_by_role("dialog", name="Your new secret key")
    dialog.wait_for()

    assert dialog.evaluate("el => el.tagName") == "DIALOG"
    assert dialog.evaluate("el => el.matches(':modal')")  # the page behind is inert
    assert "will not be shown again" in dialog.evaluate(
        "el => document.getElementById(el.getAttribute('aria-describedby')).textContent"
    )
    assert page.evaluate("document.activeElement.closest('dialog') !== null")


def test_state_badges_say_their_state_in_words(page: Any, live_app: tuple[Flask, str]) -> None:
    app, base_url = live_app
    with app.app_context():
        user = make_user("a11y-badges@shop.test", "Badge Shop")
        make_key(user, "secret", label="Live one")
        expired, _ = make_key(user, "secret", label="Old one")
        expired_row = db.session.get(ApiKey, expired.id)
        expired_row.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
        from portal.keys import service

        revoked, _ = make_key(user, "publishable", label="Gone one")
        service.revoke_key(revoked, service.Actor(name=user.email, user_id=user.id))
    sign_in(page, base_url, "a11y-badges@shop.test")

    badges = {
        row.locator("td").nth(1).locator("a").inner_text(): row.locator(
            "[class*='badge-active'], [class*='badge-expired'], [class*='badge-revoked']"
        ).inner_text()
        for row in page.locator("#key-list tbody tr").all()
    }

    assert {label: text.split()[-1] for label, text in badges.items()} == {
        "Live one": "Active",
        "Old one": "Expired",
        "Gone one": "Revoked",
    }
    # Also without colour: each state has its own symbol before the word.
    assert len({text.split()[0] for text in badges.values()}) == 3
