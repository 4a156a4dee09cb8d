"""The real flow in Chromium: sign in, create a secret key, copy it, revoke it, all through htmx."""

from __future__ import annotations

import re

from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.keys import service, tokens
from portal.keys.models import ApiKey
from portal.mail import saved_mails
from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, open_tab
from tests.conftest import PASSWORD, make_key, make_user
from tests.helpers import confirmation_path


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
    page.get_by_role("button", name="Copied", exact=True).wait_for()
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


# --- the rest of the merchant's journey --------------------------------------------------------


def _no_reload_marker(page) -> None:  # noqa: ANN001
    """Mark the document; htmx swaps keep it, a full page load would lose it."""
    page.evaluate("window.__noReload = 'still here'")


def _still_same_document(page) -> bool:  # noqa: ANN001
    return page.evaluate("window.__noReload") == "still here"


def _key(app: Flask, label: str) -> ApiKey:
    with app.app_context():
        key = db.session.scalar(select(ApiKey).where(ApiKey.label == label))
        db.session.expunge(key)
        return key


def test_sign_up_sign_out_and_sign_in_again(browser, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    # The "confirm first" answer is a 403, which the browser logs; nothing else may be.
    with open_tab(browser, expected_errors=r"status of 403") as page:
        _sign_up_sign_out_and_sign_in_again(page, live_app)


def _sign_up_sign_out_and_sign_in_again(page, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    page.goto(f"{base_url}/auth/login")
    page.get_by_role("link", name="Create a store account").click()
    page.get_by_label("Store name").fill("Corner Shop")
    page.get_by_label("Email").fill("signup@shop.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    # Everyone is asked to check their inbox; the mail's link confirms the new store.
    page.wait_for_url(f"{base_url}/auth/check-inbox")
    assert "signup@shop.test" in page.locator("#check-inbox").inner_text()
    # Signed in before confirming: a banner says why, and keys cannot be made yet (on a phone).
    page.set_viewport_size(PHONE)
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("Email").fill("signup@shop.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/settings/api-keys")
    expect(page.locator("#confirm-banner")).to_contain_text("Confirm your email address")
    page.get_by_role("link", name="New API key").click()
    expect(page.locator("h1")).to_have_text("Confirm your email first")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(
        path=str(SCREENSHOTS / "confirm-first-phone.png"), full_page=True, caret="initial"
    )
    # The mail's link confirms the store: the banner goes, the welcome shows.
    [mail] = [m for m in saved_mails(app.config["MAIL_DIR"]) if m["To"] == "signup@shop.test"]
    page.goto(base_url + confirmation_path(mail))
    page.wait_for_url(f"{base_url}/settings/api-keys")
    assert "Welcome, Corner Shop" in page.locator(".flashes").inner_text()
    expect(page.locator("#confirm-banner")).to_have_count(0)
    page.set_viewport_size(DESKTOP)
    assert page.locator(".account .store").inner_text() == "Corner Shop"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base_url}/auth/login")
    assert "You are signed out." in page.locator(".flashes").inner_text()
    page.goto(f"{base_url}/settings/audit")
    page.wait_for_url(re.compile(r"/auth/login\?next="))

    page.get_by_label("Email").fill("signup@shop.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/settings/audit")  # back where the merchant was going


def test_create_a_publishable_key_with_origins_scopes_market_and_expiry(
    page,
    live_app: tuple[Flask, str],  # noqa: ANN001
) -> None:
    app, base_url = live_app
    with app.app_context():
        user = make_user("publishable@shop.test", "Pub Shop")
        accounts.add_market(user.merchant_id, "EU", "European Union")
    _sign_in(page, base_url, "publishable@shop.test")
    _no_reload_marker(page)

    page.get_by_role("link", name="New API key").click()
    page.get_by_role("heading", name="New API key").wait_for()
    page.get_by_label("Label").fill("Web shop")
    page.get_by_label("Description").fill("The public storefront")
    page.locator("input[name=scopes][value='checkout:create']").uncheck()
    page.get_by_label("Market", exact=True).select_option(label="EU: European Union")
    page.locator("[name='allowed_origins-0']").fill("HTTPS://Shop.Example.com:443")
    page.get_by_role("button", name="Add origin").click()
    page.locator("[name='allowed_origins-1']").fill("https://*.example.org")
    assert (
        page.locator("[name='allowed_origins-0']").input_value() == "HTTPS://Shop.Example.com:443"
    )
    page.get_by_label("Rate limit (requests per minute)").fill("120")
    page.get_by_label("Expires").fill("2031-01-31T12:00")
    page.get_by_role("button", name="Create key").click()

    dialog = page.get_by_role("dialog", name="Your new publishable key")
    dialog.wait_for()
    shown = page.locator("#revealed-key").input_value()
    assert shown.startswith("pk_live_") and tokens.parse_token(shown) is not None
    dialog.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied", exact=True).wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == shown
    dialog.get_by_role("button", name="I have copied it").click()
    dialog.wait_for(state="hidden")
    # Under the dialog: the list, the new key highlighted and focused (after the close event).
    new_row = page.locator("#key-list tr.is-new")
    expect(new_row.get_by_role("link", name="Web shop")).to_be_focused()
    assert re.search(r"/settings/api-keys\?new=\d+$", page.url)
    assert _still_same_document(page)

    key = _key(app, "Web shop")
    assert key.key_type == "publishable" and key.description == "The public storefront"
    assert list(key.scopes) == ["catalog:read", "cart:write", "customer:auth"]
    assert list(key.allowed_origins) == ["https://shop.example.com", "https://*.example.org"]
    assert key.rate_limit == 120 and key.expires_at.isoformat() == "2031-01-31T12:00:00"
    new_row.get_by_role("link", name="Web shop").click()
    page.wait_for_url(f"{base_url}/settings/api-keys/{key.id}")
    details = page.locator("main").inner_text()
    for shown_text in (
        "https://shop.example.com",
        "https://*.example.org",
        "EU: European Union",
        "2031-01-31 12:00 UTC",
        "120 requests per minute",
    ):
        assert shown_text in details
    assert "checkout:create" not in details
    assert page.locator("#publishable-key").input_value() == shown  # publishable: shown again


def test_create_a_secret_key_with_ip_ranges_and_secret_scopes(
    page,
    live_app: tuple[Flask, str],  # noqa: ANN001
) -> None:
    app, base_url = live_app
    with app.app_context():
        make_user("secret@shop.test", "Secret Shop")
    _sign_in(page, base_url, "secret@shop.test")
    page.goto(f"{base_url}/settings/api-keys/new")
    page.wait_for_load_state("networkidle")  # the form of the chosen type is swapped in

    page.get_by_label("Secret: server scripts only").check()
    page.locator("input[value='orders:write']:not([disabled])").wait_for()
    page.get_by_label("Label").fill("Back office")
    page.locator("input[name=scopes][value='orders:write']").check()
    page.locator("input[name=scopes][value='customers:read']").check()
    page.locator("[name='allowed_ip_ranges-0']").fill("203.0.113.7")
    page.get_by_role("button", name="Add IP range").click()
    page.locator("[name='allowed_ip_ranges-1']").fill("2001:db8::/32")
    page.get_by_role("button", name="Create key").click()

    page.get_by_role("dialog", name="Your new secret key").wait_for()
    shown = page.locator("#revealed-key").input_value()
    assert shown.startswith("sk_live_")
    key = _key(app, "Back office")
    assert key.key_type == "secret"
    assert set(key.scopes) == {"products:read", "orders:read", "orders:write", "customers:read"}
    assert list(key.allowed_ip_ranges) == ["203.0.113.7/32", "2001:db8::/32"]


def test_form_errors_are_shown_beside_their_fields(browser, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        make_user("errors@shop.test", "Error Shop")
    with open_tab(browser, expected_errors=r"status of 422 ") as page:
        _sign_in(page, base_url, "errors@shop.test")
        page.goto(f"{base_url}/settings/api-keys/new")
        page.wait_for_load_state("networkidle")  # the form of the chosen type is swapped in
        page.get_by_label("Label").fill("Broken")
        page.locator("[name='allowed_origins-0']").fill("https://shop.example.com/checkout")
        page.get_by_role("button", name="Create key").click()

        origin = page.locator("[name='allowed_origins-0']")
        origin_field = page.locator(".field", has=origin)
        origin_field.locator(".field-errors").wait_for()
        assert "path" in origin_field.locator(".field-errors").inner_text().lower()
        assert origin.get_attribute("aria-invalid") == "true"
        assert origin.input_value() == "https://shop.example.com/checkout"  # kept as typed

        page.get_by_label("Secret: server scripts only").check()
        page.locator("input[value='orders:write']:not([disabled])").wait_for()
        page.get_by_label("Label").fill("Broken too")
        page.locator("[name='allowed_ip_ranges-0']").fill("10.0.0.0/33")
        page.get_by_role("button", name="Create key").click()

        cidr = page.locator("[name='allowed_ip_ranges-0']")
        cidr_field = page.locator(".field", has=cidr)
        cidr_field.locator(".field-errors").wait_for()
        assert "CIDR" in cidr_field.locator(".field-errors").inner_text()
        assert cidr.get_attribute("aria-describedby").endswith("-error")
        assert page.get_by_role("heading", name="New API key").is_visible()  # nothing created
    with app.app_context():
        assert db.session.scalar(select(ApiKey).where(ApiKey.label.like("Broken%"))) is None


def test_edit_then_rotate_with_a_grace_period(page, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        user = make_user("rotate@shop.test", "Rotate Shop")
        key, old_token = make_key(user, "secret", label="Nightly export")
        key_id = key.id
    _sign_in(page, base_url, "rotate@shop.test")
    page.goto(f"{base_url}/settings/api-keys/{key_id}")
    _no_reload_marker(page)

    page.get_by_role("link", name="Edit").click()
    page.get_by_role("heading", name="Edit key").wait_for()
    page.get_by_label("Label").fill("Nightly export v2")
    page.get_by_label("Rate limit (requests per minute)").fill("30")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Key updated. The key itself did not change.").wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == "Nightly export v2"
    assert "30 requests per minute" in page.locator("main").inner_text()
    page.wait_for_url(f"{base_url}/settings/api-keys/{key_id}")

    page.get_by_role("link", name="Rotate key").click()
    page.get_by_role("heading", name="Rotate key").wait_for()
    page.get_by_label("24 hours").check()
    page.get_by_role("button", name="Rotate key").click()
    dialog = page.get_by_role("dialog", name="Your rotated secret key")
    dialog.wait_for()
    new_token = page.locator("#revealed-key").input_value()
    assert new_token.startswith("sk_live_") and new_token != old_token
    assert _still_same_document(page)

    page.goto(f"{base_url}/settings/api-keys/{key_id}")
    notice = page.locator("main .warning").inner_text()
    assert "This key was rotated. It keeps working until" in notice
    assert old_token not in page.content() and new_token not in page.content()
    for token in (old_token, new_token):  # both work during the grace period
        assert _api_status(base_url, "/api/v1/key", token) == 200


def _api_status(base_url: str, path: str, token: str) -> int:
    from tests.browser.conftest import api_get

    return api_get(base_url, path, token)


def test_filters_update_the_list_in_place(page, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        user = make_user("filters@shop.test", "Filter Shop")
        make_key(user, "publishable", label="Shop front")
        make_key(user, "secret", label="Sync job")
        gone, _ = make_key(user, "secret", label="Old job")
        service.revoke_key(gone, service.Actor(name=user.email, user_id=user.id))
    _sign_in(page, base_url, "filters@shop.test")
    _no_reload_marker(page)

    def labels() -> list[str]:
        return sorted(page.locator("#key-list tbody td:nth-child(2) a").all_inner_texts())

    assert labels() == ["Old job", "Shop front", "Sync job"]
    page.get_by_label("Type").select_option("secret")
    page.wait_for_url(re.compile(r"type=secret"))
    page.wait_for_function("document.querySelectorAll('#key-list tbody tr').length === 2")
    assert labels() == ["Old job", "Sync job"]
    page.get_by_label("State").select_option("revoked")
    page.wait_for_url(re.compile(r"state=revoked"))
    page.wait_for_function("document.querySelectorAll('#key-list tbody tr').length === 1")
    assert labels() == ["Old job"]
    assert _still_same_document(page)


def test_markets_and_their_keys_and_the_audit_log(page, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        user = make_user("markets@shop.test", "Market Shop")
        make_key(user, "publishable", label="Everywhere")
        merchant_id, email = user.merchant_id, user.email
    _sign_in(page, base_url, "markets@shop.test")
    page.get_by_role("link", name="Markets").click()
    page.get_by_label("Code").fill("UK")
    page.get_by_label("Name").fill("United Kingdom")
    page.get_by_role("button", name="Add market").click()
    page.get_by_text("Market UK added.").wait_for()
    assert "United Kingdom" in page.locator("table").inner_text()

    with app.app_context():
        owner = db.session.scalar(select(User).where(User.email == email))
        market = accounts.list_markets(merchant_id)[0]
        make_key(owner, "secret", label="UK warehouse", market_id=market.id)
    page.reload()
    page.get_by_role("link", name="1 key").click()
    page.get_by_role("heading", name="API keys of United Kingdom").wait_for()
    listed = page.locator("#key-list tbody").inner_text()
    assert "UK warehouse" in listed and "Everywhere" not in listed

    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    rows = page.locator("tbody tr").all_inner_texts()
    assert any("Created" in row and "UK warehouse" in row for row in rows)
    assert any("Created" in row and "Everywhere" in row and email in row for row in rows)


def test_the_usage_panel_shows_calls_made_with_the_key(page, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        user = make_user("usage@shop.test", "Usage Shop")
        key, token = make_key(user, "publishable", label="Counted")
    statuses = [
        _api_status(base_url, path, token)
        for path in [
            "/api/v1/catalog/products",
            "/api/v1/catalog/products",
            "/api/v1/key",
            "/api/v1/admin/orders",
        ]
    ]
    assert statuses == [200, 200, 200, 403]
    app.extensions["usage_recorder"].flush()
    _sign_in(page, base_url, "usage@shop.test")

    page.get_by_role("link", name="Counted").click()
    panel = page.locator("#usage-panel")
    panel.wait_for()

    assert panel.locator("[data-figure=total]").inner_text() == "4"
    assert panel.locator("[data-figure=success-rate]").inner_text() == "75.0%"
    assert panel.locator("[data-outcome=scope_denied] td").nth(1).inner_text() == "1"
    recent = panel.locator("table").last.inner_text()
    assert recent.count("GET /api/v1/catalog/products") == 2
    assert "GET /api/v1/admin/orders" in recent and "403" in recent


def test_create_a_key_with_the_keyboard_alone(page, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        make_user("keyboard@shop.test", "Keyboard Shop")
    _sign_in(page, base_url, "keyboard@shop.test")

    def tab_to(selector: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("a.button.primary")  # New API key
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="New API key").wait_for()
    tab_to("input[name=label]")
    page.keyboard.type("Typed key")
    tab_to("button[type=submit].primary")  # Create key
    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    assert page.evaluate("document.activeElement.textContent") == "Copy"
    page.keyboard.press("Space")
    page.get_by_role("button", name="Copied", exact=True).wait_for()
    assert (
        page.evaluate("navigator.clipboard.readText()")
        == page.locator("#revealed-key").input_value()
    )
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    expect(page.locator("#key-list tr.is-new a[data-focus-after-dialog]")).to_be_focused()
    assert page.evaluate("document.activeElement.textContent") == "Typed key"


def test_without_javascript_reload_and_back_never_mint_another_key(
    browser,
    live_app: tuple[Flask, str],  # noqa: ANN001
) -> None:
    app, base_url = live_app
    with app.app_context():
        make_user("nojs@shop.test", "No-JS Shop")
    with open_tab(browser, java_script_enabled=False) as tab:
        _sign_in(tab, base_url, "nojs@shop.test")
        tab.goto(f"{base_url}/settings/api-keys/new")
        tab.get_by_label("Secret: server scripts only").check()
        tab.get_by_label("Label").fill("No-JS sync")
        tab.get_by_role("button", name="Create key").click()

        tab.wait_for_url(re.compile(r"/settings/api-keys/reveal/[\w-]+$"))
        shown = tab.locator("#revealed-key").input_value()
        assert shown.startswith("sk_live_") and shown not in tab.url
        assert "will not be shown again" in tab.get_by_role("dialog").inner_text()
        # Copy needs JavaScript: without it the button is not offered (the key is selectable).
        assert tab.locator("[data-copy]").count() == 1
        assert not tab.locator("[data-copy]").is_visible()
        assert tab.locator("#key-list tr.is-new").inner_text().startswith("Secret")
        assert all(shown not in cookie["value"] for cookie in tab.context.cookies())

        tab.reload()
        assert tab.locator("#revealed-key").count() == 0 and shown not in tab.content()
        assert "not shown again" in tab.locator(".flash").inner_text()
        tab.go_back()  # the form again: a fresh form, not a resent POST
        tab.go_forward()
        assert shown not in tab.content()
        with app.app_context():
            user = db.session.scalar(select(User).where(User.email == "nojs@shop.test"))
            labels = db.session.scalars(
                select(ApiKey.label).where(ApiKey.merchant_id == user.merchant_id)
            ).all()
        assert labels == ["No-JS sync"]


def test_the_create_form_follows_the_type_and_keeps_the_focus(
    browser,
    live_app: tuple[Flask, str],  # noqa: ANN001
) -> None:
    with open_tab(browser, expected_errors=r"status of 422 ") as page:
        _follow_type_and_focus(page, live_app)


def _follow_type_and_focus(page, live_app: tuple[Flask, str]) -> None:  # noqa: ANN001
    app, base_url = live_app
    with app.app_context():
        make_user("follow@shop.test", "Follow Shop")
    _sign_in(page, base_url, "follow@shop.test")
    page.goto(f"{base_url}/settings/api-keys/new")

    # Publishable (the default): origins only, secret-only scopes unavailable.
    page.locator("#key-form:not([data-refresh-type])").wait_for()
    expect(page.locator("#ip-ranges")).to_have_count(0)
    expect(page.locator("#origins")).to_have_count(1)
    expect(page.locator("input[name=scopes][value='orders:write']")).to_be_disabled()

    page.get_by_label("Label").fill("Typed first")
    page.get_by_label("Secret: server scripts only").check()
    expect(page.locator("#origins")).to_have_count(0)
    expect(page.locator("#ip-ranges")).to_have_count(1)
    expect(page.locator("input[name=scopes][value='orders:write']")).to_be_enabled()
    expect(page.get_by_label("Secret: server scripts only")).to_be_focused()
    assert page.get_by_label("Label").input_value() == "Typed first"
    checked = page.locator("input[name=scopes]:checked")
    assert sorted(checked.evaluate_all("boxes => boxes.map(b => b.value)")) == [
        "orders:read",
        "products:read",
    ]

    page.get_by_role("button", name="Add IP range").click()
    expect(page.locator("[name='allowed_ip_ranges-1']")).to_be_focused()
    page.keyboard.type("203.0.113.0/24")
    page.get_by_role("button", name="Remove IP range 1").click()
    expect(page.locator("[name='allowed_ip_ranges-0']")).to_be_focused()
    assert page.locator("[name='allowed_ip_ranges-0']").input_value() == "203.0.113.0/24"

    page.get_by_label("Start from a preset").select_option("storefront")
    expect(page.get_by_label("Publishable: safe in storefront browser code")).to_be_checked()
    assert page.get_by_label("Rate limit (requests per minute)").input_value() == "600"
    expect(page.locator("#ip-ranges")).to_have_count(0)

    page.get_by_label("Label").fill("")
    page.get_by_role("button", name="Create key").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    summary.get_by_role("link").first.click()
    expect(page.get_by_label("Label")).to_be_focused()
    with app.app_context():
        assert db.session.scalar(select(ApiKey).where(ApiKey.label == "Typed first")) is None


def test_the_phone_menu_works_without_javascript(
    browser,
    live_app: tuple[Flask, str],  # noqa: ANN001
) -> None:
    app, base_url = live_app
    with app.app_context():
        make_user("phone@shop.test", "Phone Shop")
    with open_tab(browser, java_script_enabled=False, viewport=PHONE) as tab:
        _sign_in(tab, base_url, "phone@shop.test")
        wide_nav = tab.get_by_role("navigation", name="Settings", exact=True)
        expect(wide_nav).to_be_hidden()
        header = tab.locator("header.topbar").bounding_box()
        assert header["height"] < 80  # one row, not four

        tab.get_by_text("Menu", exact=True).click()
        menu = tab.get_by_role("navigation", name="Settings menu")
        expect(menu).to_be_visible()
        menu.get_by_role("link", name="Usage").click()
        tab.wait_for_url(f"{base_url}/settings/usage")
        assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
