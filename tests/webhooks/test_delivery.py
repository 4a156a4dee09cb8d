"""Deliveries to a real local receiver: signatures, the outbox, retries, SSRF refusals."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.outbox import OutboxEvent
from portal.store import service as store
from portal.store.common import InvalidField
from portal.webhooks import delivery, transport
from portal.webhooks.models import WebhookDelivery
from tests.factories import Api, add_product, publishable_token, secret_token
from tests.webhooks.conftest import Receiver


def verified(secret: str, received: Any) -> dict[str, Any]:
    """The body, verified with the standardwebhooks package's own verifier."""
    return Webhook(secret).verify(received.body, received.headers)


def attempts() -> list[tuple[int, str, int | None]]:
    db.session.expire_all()
    rows = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
    return [(row.attempt, row.state, row.status_code) for row in rows]


def test_an_order_placed_through_the_storefront_reaches_the_endpoint_signed(
    client: FlaskClient, user: User, endpoint: Any, receiver: Receiver
) -> None:
    _endpoint, secret = endpoint
    mug = add_product(user)
    shop = Api(client, publishable_token(user))
    cart = shop.post("/carts", {"items": [{"product_id": mug.id, "quantity": 2}]}).get_json()
    checkout = shop.post("/checkouts", {"cart_id": cart["id"], "email": "ann@example.test"})
    shop.post(f"/checkouts/{checkout.get_json()['id']}/complete")
    bodies = [verified(secret, request) for request in receiver.requests]
    types = [body["type"] for body in bodies]
    assert types[-3:] == ["customer.created", "order.created", "order.placed"]
    placed = bodies[-1]
    assert placed["data"]["status"] == "placed" and placed["data"]["total"] == 3600
    assert placed["data"]["customer"]["email"] == "ann@example.test"
    assert set(placed) == {"type", "timestamp", "data"}
    headers = receiver.requests[-1].headers
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith(
        "v1,"
    )
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(receiver.requests[-1].body, headers)


def test_a_change_that_rolls_back_emits_nothing(
    user: User, endpoint: Any, receiver: Receiver
) -> None:
    add_product(user, sku="MUG-1")
    sent = len(receiver.requests)
    events = db.session.query(OutboxEvent).count()
    with pytest.raises(InvalidField):
        store.create_product(
            store.Tenant(user.merchant_id),
            {"name": "Copy", "price": 1, "currency": "USD", "sku": "MUG-1"},
        )
    assert db.session.query(OutboxEvent).count() == events
    assert len(receiver.requests) == sent


def test_a_crash_between_commit_and_enqueue_loses_nothing(
    user: User, endpoint: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _endpoint, secret = endpoint
    monkeypatch.setattr(delivery, "dispatch_events", lambda ids: None)  # the process died here
    product = add_product(user, name="Teapot")
    assert receiver.requests == []
    assert db.session.scalar(select(OutboxEvent.dispatched_at)) is None
    monkeypatch.undo()
    assert delivery.pump() == 1
    (request,) = receiver.requests
    assert verified(secret, request)["data"]["id"] == product.id


def test_a_worker_killed_mid_delivery_redelivers(
    user: User, endpoint: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*_args: Any, **_kwargs: Any) -> Any:
        raise SystemExit("worker killed")

    monkeypatch.setattr(delivery, "dispatch_events", lambda ids: None)
    add_product(user)
    monkeypatch.setattr(transport, "post", killed)
    with pytest.raises(SystemExit):
        delivery.pump()  # the worker claims the delivery, then dies while sending it
    monkeypatch.undo()
    assert attempts() == [(1, "pending", None)]
    assert delivery.pump() == 0  # claimed a moment ago: that worker may still be at it
    claimed = db.session.scalars(select(WebhookDelivery)).one()
    claimed.claimed_at = utcnow() - delivery.STALE_CLAIM - timedelta(seconds=1)  # time passes
    db.session.commit()
    assert delivery.pump() == 1
    assert attempts() == [(1, "succeeded", 200)]
    assert len(receiver.requests) == 1


def test_retries_after_failures_then_succeeds(
    user: User, endpoint: Any, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    add_product(user)
    assert attempts() == [(1, "failed", 500), (2, "pending", None)]
    assert delivery.pump() == 0  # the retry is due in about 5 seconds
    assert delivery.pump(now=utcnow() + timedelta(seconds=6)) == 1
    assert attempts()[-2:] == [(2, "failed", 503), (3, "pending", None)]
    assert delivery.pump(now=utcnow() + timedelta(minutes=4)) == 0
    assert delivery.pump(now=utcnow() + timedelta(minutes=5, seconds=6)) == 1
    assert attempts() == [(1, "failed", 500), (2, "failed", 503), (3, "succeeded", 200)]
    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1  # one event, three attempts
    failed = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
    assert (
        failed.response_excerpt.startswith("receiver says no")
        and len(failed.response_excerpt) == 1024
    )


def test_gives_up_after_the_last_retry_and_disables_after_five_days(
    app: Flask, user: User, endpoint: Any, receiver: Receiver, mailbox: Any
) -> None:
    hook, _secret = endpoint
    receiver.statuses = [500] * 20
    add_product(user)
    now = utcnow()
    for wait in delivery.RETRY_SCHEDULE:
        now += wait + timedelta(seconds=1)
        delivery.pump(now=now)
    states = attempts()
    assert len(states) == 8 and states[-1] == (8, "given_up", 500)
    assert sum(delivery.RETRY_SCHEDULE, timedelta()) > timedelta(days=1)
    db.session.refresh(hook)
    assert hook.enabled  # failing for about 28 hours, not 5 days
    hook.failing_since = utcnow() - timedelta(days=5, minutes=1)
    db.session.commit()
    add_product(user, name="Another")
    db.session.refresh(hook)
    assert not hook.enabled and "5 days" in hook.disabled_reason
    (notice,) = [mail for mail in mailbox() if "disabled" in mail["Subject"]]
    assert notice["To"] == user.email and hook.url in notice.get_body(("plain",)).get_content()
    sent = len(receiver.requests)
    add_product(user, name="Third")
    assert len(receiver.requests) == sent  # a disabled endpoint gets nothing


def test_a_rotated_secret_signs_alongside_the_old_one_for_24_hours(
    user: User, endpoint: Any, receiver: Receiver
) -> None:
    from portal.webhooks import service

    hook, old_secret = endpoint
    new_secret = service.rotate_secret(hook)
    add_product(user)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(old_secret, request) == verified(new_secret, request)
    hook.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    add_product(user, name="Later")
    later = receiver.requests[-1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    verified(new_secret, later)
    with pytest.raises(WebhookVerificationError):
        verified(old_secret, later)


def test_redirects_are_not_followed(user: User, endpoint: Any, receiver: Receiver) -> None:
    receiver.statuses = [302]
    receiver.location = f"http://127.0.0.1:{receiver.port}/elsewhere"
    add_product(user)
    assert [request.path for request in receiver.requests] == ["/hooks"]
    db.session.expire_all()
    first = db.session.scalars(select(WebhookDelivery)).first()
    assert first.state == "failed" and "not followed" in first.error


class TestProductionRefusesPrivateAddresses:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": False}

    def test_a_name_resolving_to_loopback_is_refused(self, user: User, receiver: Receiver) -> None:
        from portal.webhooks import service

        service.create_endpoint(
            user.merchant_id,
            {"url": f"http://localhost:{receiver.port}/hooks", "event_types": ["product.created"]},
        )
        add_product(user)
        assert receiver.requests == []
        db.session.expire_all()
        (row,) = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.attempt == 1))
        assert row.state == "failed" and "127.0.0.1" in row.error and "private" in row.error


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - an address to refuse, not to bind
        ("::1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
    ],
)
def test_public_addresses_only(address: str, public: bool) -> None:
    assert transport.is_public_address(address) is public


def test_the_body_is_json_with_the_spec_fields(
    user: User, endpoint: Any, receiver: Receiver
) -> None:
    add_product(user, name="Jug")
    body = json.loads(receiver.requests[-1].body)
    assert body["type"] == "product.created" and body["data"]["name"] == "Jug"
    assert body["timestamp"].endswith("Z")
    assert receiver.requests[-1].headers["content-type"] == "application/json"


def test_key_events_never_carry_the_key(
    client: FlaskClient, user: User, endpoint: Any, receiver: Receiver
) -> None:
    token = secret_token(user)
    bodies = [json.loads(request.body) for request in receiver.requests]
    assert bodies[-1]["type"] == "api_key.created"
    assert token not in b"".join(request.body for request in receiver.requests).decode()
