"""The webhook pages in Chromium: add an endpoint, copy its secret, send a test event and see it
delivered and verified in the log, redeliver it, disable the endpoint; all through htmx."""

from __future__ import annotations

from flask import Flask
from standardwebhooks.webhooks import Webhook

from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.conftest import make_user
from tests.webhooks.conftest import Receiver
from tests.webhooks.conftest import receiver as receiver  # noqa: PLC0414 - the fixture


def test_add_an_endpoint_send_a_test_event_and_see_it_delivered(
    page,  # noqa: ANN001
    live_app: tuple[Flask, str],
    receiver: Receiver,
) -> None:
    app, base_url = live_app
    with app.app_context():
        make_user("hooks@shop.test", "Hook Shop")
    sign_in(page, base_url, "hooks@shop.test")
    page.get_by_role("link", name="Webhooks").click()
    page.wait_for_url(f"{base_url}/settings/webhooks")
    page.evaluate("window.__noReload = 'still here'")

    page.get_by_role("link", name="Add endpoint").first.click()
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("Description").fill("Back-office order sync")
    page.get_by_label("order.placed").check()
    page.get_by_label("order.cancelled").check()
    page.get_by_role("button", name="Add endpoint").click()

    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert "will not be shown again" in dialog.inner_text()
    secret = page.locator("#webhook-secret").input_value()
    assert secret.startswith("whsec_")
    dialog.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied", exact=True).wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webhook-secret.png"))
    dialog.get_by_role("link", name="Done").click()
    page.get_by_role("heading", name="Delivery log").wait_for()
    assert secret not in page.content()

    page.get_by_role("button", name="Send test event").click()
    page.get_by_text("Test event sent").wait_for()
    row = page.locator("#deliveries tr.delivery").first
    assert "webhook.test" in row.inner_text() and "200 Delivered" in row.inner_text()
    (request,) = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"
    page.screenshot(path=str(SCREENSHOTS / "webhook-log.png"), full_page=True)

    row.get_by_role("button", name="Redeliver").click()
    page.get_by_text("Redelivery sent").wait_for()
    assert page.locator("#deliveries tr.delivery").count() == 2
    assert len(receiver.requests) == 2

    page.get_by_role("button", name="Disable").click()
    page.get_by_text("Endpoint disabled.").wait_for()
    assert page.get_by_role("button", name="Enable").is_visible()
    assert page.evaluate("window.__noReload") == "still here"
