"""The transactional outbox: events written in the same transaction as the change.

`emit()` only adds a row to the session: the caller's commit writes it together with the change
that caused it, and a rollback drops both. After a commit that wrote events, the dispatcher the
webhooks area registers (`on_commit`) is called with their ids; if that never happens (a crash
right after the commit), the webhooks' every-minute job picks up every undispatched row.
This module imports no area, so every area may emit.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.database import utcnow
from portal.extensions import db

EVENT_TYPES: tuple[str, ...] = (
    "order.created",
    "order.placed",
    "order.fulfilled",
    "order.cancelled",
    "order.expired",
    "product.created",
    "product.updated",
    "product.deleted",
    "customer.created",
    "api_key.created",
    "api_key.rotated",
    "api_key.revoked",
    "api_key.expiring",
    "api_key.leaked",
    "settings.updated",
)
TEST_EVENT = "webhook.test"
EVENT_ID_PREFIX = "msg_"
_ID_ALPHABET = string.ascii_letters + string.digits
_PENDING = "outbox_pending"
_dispatchers: list[Callable[[list[str]], None]] = []


class OutboxEvent(db.Model):
    """An event waiting to be (or already) handed to the webhook deliveries."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_undispatched", "dispatched_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once the event has a delivery row for each endpoint that wants it.
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)


def new_event_id() -> str:
    """A random, unique event id such as msg_2x9…, sent as `webhook-id`."""
    return EVENT_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def emit(
    merchant_id: int, event_type: str, data: dict[str, Any], *, test: bool = False
) -> OutboxEvent:
    """Add an event to the outbox in the current transaction (committed by the caller)."""
    if event_type not in EVENT_TYPES and not (test and event_type == TEST_EVENT):
        raise ValueError(f"Unknown webhook event type {event_type!r}.")
    row = OutboxEvent(id=new_event_id(), merchant_id=merchant_id, type=event_type, data=data)
    db.session.add(row)
    db.session.info.setdefault(_PENDING, []).append(row.id)
    return row


def on_commit(dispatcher: Callable[[list[str]], None]) -> None:
    """Call `dispatcher(event_ids)` after each commit that wrote events."""
    if dispatcher not in _dispatchers:
        _dispatchers.append(dispatcher)


@event.listens_for(Session, "after_commit")
def _dispatch_committed(session: Session) -> None:
    ids = session.info.pop(_PENDING, None)
    if ids:
        for dispatcher in _dispatchers:
            dispatcher(ids)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
