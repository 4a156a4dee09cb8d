"""`/api/docs`: the API reference renders in Chromium from the OpenAPI document, under the
portal's strict CSP (no inline script or style), with nothing fetched from elsewhere."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.browser.conftest import screenshot


def test_the_reference_renders_every_operation_under_the_strict_csp(
    live_app: tuple[Flask, str], page: Any
) -> None:
    _, base_url = live_app
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(base_url) else elsewhere.append(request.url),
    )
    response = page.goto(f"{base_url}/api/docs")
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy

    page.wait_for_selector(".opblock")
    document = page.request.get(f"{base_url}/api/v1/openapi.json").json()
    operations = [
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    ]
    assert page.locator(".opblock").count() == len(operations)
    assert page.get_by_role("heading", name="Merchant store API").is_visible()

    # An operation opens to its scope, its body's fields and its documented errors.
    create = page.locator("#operations-Admin-create_product")
    create.locator(".opblock-summary").click()
    section = create.locator(".opblock-body")
    section.wait_for()
    assert "Required scope: products:write" in section.inner_text()
    for status in ("201", "400", "401", "403", "415", "429"):
        assert section.locator(f"tr.response[data-code='{status}']").count() == 1, status
    # Read-only: no "Try it out" that would send a key from the browser.
    assert page.get_by_role("button", name="Try it out").count() == 0
    screenshot(page, "api-docs")
    assert elsewhere == []
