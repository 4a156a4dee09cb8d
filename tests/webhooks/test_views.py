"""`/settings/webhooks`: list, create (secret shown once), edit, disable, test, redeliver,
delete, with and without htmx."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from portal.accounts.models import User
from portal.extensions import db
from portal.webhooks import service
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.helpers import assert_fragment, assert_full_page, count, field_errors, html, post, text
from tests.webhooks.conftest import Receiver

NEW = "/settings/webhooks/new"


def form(url: str, *events: str) -> dict[str, Any]:
    return {
        "url": url,
        "description": "Order sync",
        "event_types": list(events or ["order.placed"]),
        "enabled": "y",
    }


@pytest.mark.parametrize("htmx", [False, True])
def test_create_shows_the_secret_once(
    signed_in: FlaskClient, user: User, receiver: Receiver, htmx: bool
) -> None:
    response = post(signed_in, NEW, form(receiver.url), htmx=htmx, token_from=NEW)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    secret = soup.find(id="webhook-secret")["value"]
    assert secret.startswith("whsec_") and "will not be shown again" in text(soup)
    endpoint = db.session.query(WebhookEndpoint).one()
    assert endpoint.secret == secret
    page = signed_in.get(f"/settings/webhooks/{endpoint.id}").get_data(as_text=True)
    assert secret not in page
    listing = html(signed_in.get("/settings/webhooks"))
    assert receiver.url in text(listing.find(id="endpoints"))


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("url", "http://backoffice.example.com", "https URL"),
        ("url", "", "url is required"),
        ("event_types", [], "event_types"),
    ],
)
def test_bad_input_shows_beside_the_field_and_creates_nothing(
    signed_in: FlaskClient, user: User, field: str, value: Any, words: str, htmx: bool
) -> None:
    data = {**form("https://example.com/hooks"), field: value}
    response = post(signed_in, NEW, data, htmx=htmx, token_from=NEW)
    assert response.status_code == 422
    soup = assert_fragment(response) if htmx else assert_full_page(response)
    if field == "event_types":
        assert words in text(soup.find(class_="field-errors"))
    else:
        assert words in field_errors(soup, field)
    assert count(WebhookEndpoint) == 0


def test_send_test_event_then_redeliver_from_the_log(
    signed_in: FlaskClient, user: User, receiver: Receiver
) -> None:
    endpoint, secret = service.create_endpoint(
        user.merchant_id, {"url": receiver.url, "event_types": ["order.placed"]}
    )
    show = f"/settings/webhooks/{endpoint.id}"
    response = post(signed_in, f"{show}/test", token_from=show)
    assert response.status_code == 303 and response.headers["Location"].endswith(show)
    Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    log = html(signed_in.get(show)).find(id="deliveries")
    row = text(log.find("tr", class_="delivery"))
    assert "webhook.test" in row and "200 Delivered" in row and " ms" in row
    delivery = db.session.query(WebhookDelivery).one()
    again = post(
        signed_in, f"{show}/deliveries/{delivery.id}/redeliver", htmx=True, token_from=show
    )
    assert again.status_code == 200
    assert len(assert_fragment(again).find(id="deliveries").find_all("tr", class_="delivery")) == 2
    assert len(receiver.requests) == 2


def test_edit_disable_and_delete(signed_in: FlaskClient, user: User, receiver: Receiver) -> None:
    endpoint, _secret = service.create_endpoint(
        user.merchant_id, {"url": receiver.url, "event_types": ["order.placed"]}
    )
    show = f"/settings/webhooks/{endpoint.id}"
    edited = post(
        signed_in,
        f"{show}/edit",
        form(receiver.url, "order.placed", "product.created"),
        token_from=show,
    )
    assert edited.status_code == 303
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).event_types == [
        "order.placed",
        "product.created",
    ]
    assert post(signed_in, f"{show}/toggle", token_from=show).status_code == 303
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).enabled is False
    assert "Disabled" in text(html(signed_in.get(show)))
    assert post(signed_in, f"{show}/delete", token_from=show).status_code == 303
    assert count(WebhookEndpoint) == 0


def test_rotate_shows_the_new_secret_once(
    signed_in: FlaskClient, user: User, receiver: Receiver
) -> None:
    endpoint, old = service.create_endpoint(
        user.merchant_id, {"url": receiver.url, "event_types": ["order.placed"]}
    )
    show = f"/settings/webhooks/{endpoint.id}"
    response = post(signed_in, f"{show}/rotate", token_from=show)
    new = html(response).find(id="webhook-secret")["value"]
    assert new.startswith("whsec_") and new != old and "24 hours" in text(html(response))


def test_posts_without_csrf_change_nothing(signed_in: FlaskClient, user: User) -> None:
    endpoint, _ = service.create_endpoint(
        user.merchant_id, {"url": "https://example.com/h", "event_types": ["order.placed"]}
    )
    for path in ("toggle", "delete", "test", "rotate"):
        assert signed_in.post(f"/settings/webhooks/{endpoint.id}/{path}").status_code == 400
    assert signed_in.post(NEW, data=form("https://example.com/x")).status_code == 400
    db.session.expire_all()
    assert count(WebhookEndpoint) == 1 and db.session.get(WebhookEndpoint, endpoint.id).enabled


def test_another_stores_endpoint_is_404(
    signed_in: FlaskClient, user: User, other_user: User
) -> None:
    theirs, _ = service.create_endpoint(
        other_user.merchant_id, {"url": "https://example.com/h", "event_types": ["order.placed"]}
    )
    base = f"/settings/webhooks/{theirs.id}"
    for path in ("", "/edit", "/delete"):
        assert signed_in.get(base + path).status_code == 404
    for path in ("/toggle", "/test", "/rotate", "/delete", "/edit"):
        assert (
            post(signed_in, base + path, form("https://a.example.com"), token_from=NEW).status_code
            == 404
        )
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, theirs.id).enabled is True


def test_html_in_the_description_is_escaped(signed_in: FlaskClient, user: User) -> None:
    endpoint, _ = service.create_endpoint(
        user.merchant_id,
        {
            "url": "https://example.com/h",
            "event_types": ["order.placed"],
            "description": "<b>x</b>",
        },
    )
    body = signed_in.get(f"/settings/webhooks/{endpoint.id}").get_data(as_text=True)
    assert "<b>x</b>" not in body and "&lt;b&gt;" in body
