"""Delivering outbox events to endpoints, in the worker: signing, retries, giving up.

After a commit that wrote events, `dispatch_events` (a task) gives each event one delivery row
per enabled endpoint that wants it and enqueues `deliver` for each. `pump`, run every minute,
dispatches whatever was never dispatched (a crash between commit and enqueue) and runs every
delivery that is due: retries, and attempts whose worker died mid-delivery.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update
from standardwebhooks.webhooks import Webhook

from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.mail import send_mail
from portal.outbox import TEST_EVENT, emit, on_commit
from portal.tasks import huey, task
from portal.webhooks import transport
from portal.webhooks.models import (
    DELIVERY_FAILED,
    DELIVERY_GIVEN_UP,
    DELIVERY_PENDING,
    DELIVERY_SUCCEEDED,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)

# The wait before attempt 2, 3, … 8; after the 8th attempt fails the delivery is given up.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=5)
# An attempt claimed this long ago without a result: its worker died; try again.
STALE_CLAIM = timedelta(minutes=2)
PUMP_BATCH = 200

log = logging.getLogger(__name__)


def _enqueue(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        deliver(delivery_id)


@task()
def dispatch_events(event_ids: list[str]) -> int:
    """Give each event a delivery per endpoint that wants it, then enqueue them; returns how
    many deliveries were created."""
    order = {event_id: index for index, event_id in enumerate(event_ids)}
    events = db.session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.id.in_(event_ids), OutboxEvent.dispatched_at.is_(None)
        )
    )
    # In the order they were emitted, so a receiver sees customer.created before order.created.
    created = _dispatch(sorted(events, key=lambda event: order[event.id]))
    _enqueue(created)
    return len(created)


def _dispatch(events: list[OutboxEvent]) -> list[int]:
    """Delivery rows for the events (each event once, even with two workers at it)."""
    created: list[WebhookDelivery] = []
    now = utcnow()
    for event in events:
        claimed = db.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event.id, OutboxEvent.dispatched_at.is_(None))
            .values(dispatched_at=now)
        )
        if claimed.rowcount != 1:
            continue
        endpoints = db.session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.merchant_id == event.merchant_id,
                WebhookEndpoint.enabled.is_(True),
            )
        )
        for endpoint in endpoints:
            if endpoint.wants(event.type):
                delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, due_at=now)
                db.session.add(delivery)
                created.append(delivery)
    db.session.commit()
    return [delivery.id for delivery in created]


def body_of(event: OutboxEvent) -> str:
    """The Standard Webhooks body: `{"type", "timestamp", "data"}`."""
    return json.dumps(
        {
            "type": event.type,
            "timestamp": event.created_at.replace(microsecond=0).isoformat() + "Z",
            "data": event.data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def signed_headers(
    endpoint: WebhookEndpoint, event_id: str, body: str, now: datetime
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp`, `webhook-signature` (the current secret's, and the
    previous one's while it is still valid)."""
    moment = now.replace(microsecond=0)
    secrets = [endpoint.secret]
    if endpoint.previous_secret and (endpoint.previous_secret_expires_at or now) > now:
        secrets.append(endpoint.previous_secret)
    stamp = moment.replace(tzinfo=UTC)
    signatures = [Webhook(secret).sign(event_id, stamp, body) for secret in secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": " ".join(signatures),
        "Content-Type": "application/json",
        "User-Agent": "merchant-key-portal-webhooks/1",
    }


@task()
def deliver(delivery_id: int) -> str | None:
    """Make one attempt of a delivery; on failure schedule the next one (or give up)."""
    now = utcnow()
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.state == DELIVERY_PENDING,
            or_(
                WebhookDelivery.claimed_at.is_(None),
                WebhookDelivery.claimed_at < now - STALE_CLAIM,
            ),
        )
        .values(claimed_at=now)
    )
    db.session.commit()
    if claimed.rowcount != 1:
        return None  # done already, or another worker has it
    delivery = db.session.get(WebhookDelivery, delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    body = body_of(event)
    answer = transport.post(
        endpoint.url,
        body.encode(),
        signed_headers(endpoint, event.id, body, utcnow()),
        allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"],
    )
    delivery.attempted_at = utcnow()
    delivery.status_code = answer.status_code
    delivery.latency_ms = answer.latency_ms
    delivery.response_excerpt = answer.excerpt
    delivery.error = answer.error
    if answer.ok:
        delivery.state = DELIVERY_SUCCEEDED
        endpoint.failing_since = None
        db.session.commit()
        return delivery.state
    retry = _schedule_retry(delivery)
    disabled = _note_failure(endpoint, delivery.attempted_at)
    db.session.commit()
    if retry is not None and not huey.immediate:
        wait = (retry.due_at - utcnow()).total_seconds()
        deliver.schedule((retry.id,), delay=max(wait, 0))
    if disabled:
        _mail_disabled(endpoint)
    return delivery.state


def _schedule_retry(delivery: WebhookDelivery) -> WebhookDelivery | None:
    """The next attempt after a failed one, or None when this was the last."""
    if delivery.attempt > len(RETRY_SCHEDULE):
        delivery.state = DELIVERY_GIVEN_UP
        return None
    delivery.state = DELIVERY_FAILED
    retry = WebhookDelivery(
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        attempt=delivery.attempt + 1,
        due_at=(delivery.attempted_at or utcnow()) + RETRY_SCHEDULE[delivery.attempt - 1],
    )
    db.session.add(retry)
    db.session.flush()
    return retry


def _note_failure(endpoint: WebhookEndpoint, when: datetime) -> bool:
    """Record a failure; an endpoint failing for 5 days is disabled (returns True then)."""
    if endpoint.failing_since is None:
        endpoint.failing_since = when
        return False
    if endpoint.enabled and when - endpoint.failing_since >= DISABLE_AFTER:
        endpoint.enabled = False
        endpoint.disabled_reason = "Disabled automatically: every delivery failed for 5 days."
        db.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.state == DELIVERY_PENDING,
            )
            .values(state=DELIVERY_GIVEN_UP, error="Endpoint disabled.")
        )
        return True
    return False


def _mail_disabled(endpoint: WebhookEndpoint) -> None:
    recipients = list(
        db.session.scalars(
            select(User.email).where(User.merchant_id == endpoint.merchant_id).order_by(User.id)
        )
    )
    if recipients:
        send_mail(
            recipients,
            "Webhook endpoint disabled after 5 days of failures",
            "webhook_disabled",
            endpoint_id=endpoint.id,
            url=endpoint.url,
        )


def pump(now: datetime | None = None) -> int:
    """Every minute: dispatch undispatched events and run due deliveries; returns how many
    deliveries it ran."""
    now = now or utcnow()
    undispatched = list(
        db.session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at)
            .limit(PUMP_BATCH)
        )
    )
    dispatched = _dispatch(undispatched) if undispatched else []
    due = list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.state == DELIVERY_PENDING,
                WebhookDelivery.due_at <= now,
                or_(
                    WebhookDelivery.claimed_at.is_(None),
                    WebhookDelivery.claimed_at < now - STALE_CLAIM,
                ),
            )
            .order_by(WebhookDelivery.due_at)
            .limit(PUMP_BATCH)
        )
    )
    db.session.commit()
    runs = dispatched + [delivery_id for delivery_id in due if delivery_id not in dispatched]
    _enqueue(runs)
    return len(runs)


def send_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event delivered to this endpoint alone (enqueued now)."""
    event = emit(
        endpoint.merchant_id,
        TEST_EVENT,
        {"endpoint_id": endpoint.id, "message": "This is a test event from the key portal."},
        test=True,
    )
    event.dispatched_at = utcnow()  # for this endpoint only, not for every subscriber
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id)
    db.session.add(delivery)
    db.session.commit()
    deliver(delivery.id)
    return delivery


def redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again, now, as a new attempt series."""
    again = WebhookDelivery(endpoint_id=delivery.endpoint_id, event_id=delivery.event_id)
    db.session.add(again)
    db.session.commit()
    deliver(again.id)
    return again


def _on_commit(event_ids: list[str]) -> None:
    try:
        dispatch_events(event_ids)
    except Exception:  # the every-minute pump dispatches them: the change stays committed
        log.exception("Enqueueing the dispatch of %d webhook events failed", len(event_ids))


on_commit(_on_commit)


def delivery_summary(delivery: WebhookDelivery) -> dict[str, Any]:
    """What the log shows of one delivery."""
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": delivery.event.type,
        "attempt": delivery.attempt,
        "state": delivery.state,
        "due_at": delivery.due_at,
        "attempted_at": delivery.attempted_at,
        "status_code": delivery.status_code,
        "latency_ms": delivery.latency_ms,
        "response_excerpt": delivery.response_excerpt,
        "error": delivery.error,
    }
