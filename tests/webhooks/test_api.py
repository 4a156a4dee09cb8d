"""`/api/v1/admin/webhooks…`: endpoints, test events, the delivery log and redelivery."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.webhooks import service
from portal.webhooks.models import WebhookEndpoint
from tests.factories import Api, error_of, secret_token
from tests.helpers import count, row_counts
from tests.webhooks.conftest import Receiver

ROUTES = [
    ("GET", "/admin/webhooks", "webhooks:read"),
    ("POST", "/admin/webhooks", "webhooks:write"),
    ("GET", "/admin/webhooks/{id}", "webhooks:read"),
    ("PATCH", "/admin/webhooks/{id}", "webhooks:write"),
    ("DELETE", "/admin/webhooks/{id}", "webhooks:write"),
    ("POST", "/admin/webhooks/{id}/rotate-secret", "webhooks:write"),
    ("GET", "/admin/webhooks/{id}/deliveries", "webhooks:read"),
    ("POST", "/admin/webhooks/{id}/deliveries/{delivery}/retry", "webhooks:write"),
    ("POST", "/admin/webhooks/{id}/test", "webhooks:write"),
]


def create(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/admin/webhooks", {"url": url, "event_types": ["order.placed"], **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_test_event_and_read_the_log(
    client: FlaskClient, user: User, receiver: Receiver
) -> None:
    api = Api(client, secret_token(user))
    created = create(api, receiver.url, description="Back office")
    secret = created.pop("secret")
    assert secret.startswith("whsec_")
    assert created["url"] == receiver.url and created["enabled"] is True
    assert "secret" not in api.get(f"/admin/webhooks/{created['id']}").get_json()
    assert api.get("/admin/webhooks").get_json()["data"][0]["id"] == created["id"]

    sent = api.post(f"/admin/webhooks/{created['id']}/test")
    assert sent.status_code == 202
    delivery = sent.get_json()
    assert delivery["event_type"] == "webhook.test" and delivery["state"] == "succeeded"
    assert delivery["status_code"] == 200 and delivery["latency_ms"] is not None
    body = Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    assert body["type"] == "webhook.test"

    log = api.get(f"/admin/webhooks/{created['id']}/deliveries").get_json()["data"]
    assert [row["id"] for row in log] == [delivery["id"]]
    again = api.post(f"/admin/webhooks/{created['id']}/deliveries/{delivery['id']}/retry")
    assert again.status_code == 202 and again.get_json()["event_id"] == delivery["event_id"]
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]


def test_update_rotate_and_delete(client: FlaskClient, user: User, receiver: Receiver) -> None:
    api = Api(client, secret_token(user))
    created = create(api, receiver.url)
    path = f"/admin/webhooks/{created['id']}"
    changed = api.patch(
        path, {"enabled": False, "event_types": ["order.placed", "product.deleted"]}
    )
    assert changed.get_json()["enabled"] is False
    assert changed.get_json()["event_types"] == ["order.placed", "product.deleted"]
    rotated = api.post(f"{path}/rotate-secret").get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert api.delete(path).status_code == 204
    assert error_of(api.get(path))[:2] == (404, "not_found")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "http://backoffice.example.com/hooks"}, "https URL"),
        ({"url": "ftp://example.com"}, "https URL"),
        ({"url": "https://user:pw@example.com"}, "https URL"),
        ({"event_types": ["order.eaten"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"url": None}, "url"),
        ({"secret": "whsec_mine"}, "not a webhook endpoint field"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    client: FlaskClient, user: User, body: dict[str, Any], words: str
) -> None:
    api = Api(client, secret_token(user))
    before = row_counts()
    full = {"url": "https://example.com/hooks", "event_types": ["order.placed"], **body}
    status, code, message = error_of(api.post("/admin/webhooks", full))
    assert (status, code) == (400, "invalid_request")
    assert words in message, message
    assert row_counts() == before


def _paths(endpoint_id: int, delivery_id: int) -> list[tuple[str, str, str]]:
    return [
        (method, path.format(id=endpoint_id, delivery=delivery_id), scope)
        for method, path, scope in ROUTES
    ]


@pytest.mark.parametrize("index", range(len(ROUTES)))
def test_every_endpoint_needs_its_scope(
    client: FlaskClient, user: User, receiver: Receiver, index: int
) -> None:
    owner = Api(client, secret_token(user))
    hook = create(owner, receiver.url)
    delivery = owner.post(f"/admin/webhooks/{hook['id']}/test").get_json()
    method, path, scope = _paths(hook["id"], delivery["id"])[index]
    other = "webhooks:write" if scope == "webhooks:read" else "webhooks:read"
    api = Api(client, secret_token(user, scopes=[other, "products:read"]))
    before = row_counts()
    status, code, message = error_of(
        api.call(method, path, json={"url": receiver.url, "event_types": ["order.placed"]})
    )
    assert (status, code) == (403, "insufficient_scope") and scope in message
    assert row_counts() == before


@pytest.mark.parametrize("index", range(2, len(ROUTES)))
def test_another_stores_endpoint_is_404(
    client: FlaskClient, user: User, other_user: User, receiver: Receiver, index: int
) -> None:
    owner = Api(client, secret_token(user))
    hook = create(owner, receiver.url)
    delivery = owner.post(f"/admin/webhooks/{hook['id']}/test").get_json()
    method, path, _scope = _paths(hook["id"], delivery["id"])[index]
    intruder = Api(client, secret_token(other_user))
    before = row_counts()
    status, code, _message = error_of(intruder.call(method, path, json={"enabled": False}))
    assert (status, code) == (404, "not_found")
    assert row_counts() == before
    assert count(WebhookEndpoint) == 1


def test_a_market_scoped_key_cannot_manage_webhooks(client: FlaskClient, user: User) -> None:
    market = accounts.add_market(user.merchant_id, "US", "United States")
    api = Api(client, secret_token(user, market_id=market.id))
    status, code, message = error_of(api.get("/admin/webhooks"))
    assert (status, code) == (403, "insufficient_scope") and "all markets" in message


def test_the_endpoint_limit(client: FlaskClient, user: User) -> None:
    for number in range(service.MAX_ENDPOINTS):
        service.create_endpoint(
            user.merchant_id,
            {"url": f"https://e{number}.example.com", "event_types": ["order.placed"]},
        )
    api = Api(client, secret_token(user))
    status, _code, message = error_of(
        api.post(
            "/admin/webhooks", {"url": "https://x.example.com", "event_types": ["order.placed"]}
        )
    )
    assert status == 400 and "at most" in message
