"""The subscriber feature's only contact with the outbox: queue, deliver, scrub, list.

Queued messages are rows written in the caller's transaction; `deliver` makes the first
try at sending them once that transaction is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.db import get_database
from webapp.outbox.models import OutboxMessage
from webapp.outbox.services import Mailer, deliver_now, erase_outbox_messages, queue_email
from webapp.outbox.services import get_mailer as get_mailer
from webapp.subscribers.models import Subscriber

log = logging.getLogger("readership.subscribers")

#: Context values that carry a person's own signed token.
PER_PERSON_LINKS = frozenset({"confirm_url", "preferences_url", "unsubscribe_url"})


def queue_subscription_email(
    session: Session,
    mailer: Mailer,
    *,
    template: str,
    subscriber: Subscriber,
    language: str,
    context: dict[str, Any],
    now: datetime,
    headers: dict[str, str] | None = None,
) -> int:
    """Queue one email to `subscriber` in the outbox (same transaction); returns its id.

    The signed links in `context` are per person: they go to the outbox as recipient values,
    so the template is compiled once per language, not once per signup.
    """
    per_person = {key: str(value) for key, value in context.items() if key in PER_PERSON_LINKS}
    shared = {key: value for key, value in context.items() if key not in PER_PERSON_LINKS}
    message = queue_email(
        session,
        mailer,
        template=template,
        to=subscriber.email,
        language=language,
        context=shared,
        now=now,
        headers=headers,
        subscriber_id=subscriber.id,
        recipient=per_person,
    )
    return int(message.id)


def deliver(app: Flask, message_ids: Sequence[int], now: datetime) -> None:
    """Send already committed messages now; failures stay queued for the send-email job."""
    if not message_ids:
        return
    try:
        with app.app_context():
            deliver_now(get_database(app), get_mailer(app), list(message_ids), now)
    except Exception:  # the job retries what is left queued; the reader's answer stands
        log.exception("immediate delivery of %s failed; left for the send-email job", message_ids)


def scrub_outbox(
    session: Session, *, subscriber_ids: Sequence[int], addresses: Sequence[str]
) -> int:
    """Delete the outbox messages for these subscribers and to these addresses (erasure,
    expired signups): the rows hold the address and the whole message. Returns how many."""
    removed = 0
    for subscriber_id, address in zip(subscriber_ids, addresses, strict=True):
        removed += erase_outbox_messages(session, subscriber_id=subscriber_id, address=address)
    return removed


@dataclass(frozen=True)
class SentEmail:
    """An outbox message as the staff history shows it (no body)."""

    id: int
    purpose: str
    subject: str
    status: str
    language: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


def emails_for(session: Session, subscriber_id: int, limit: int = 100) -> list[SentEmail]:
    """The latest outbox messages about one subscriber, newest first."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.subscriber_id == subscriber_id)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return [
        SentEmail(
            id=row.id,
            purpose=row.purpose,
            subject=row.subject,
            status=str(row.status),
            language=row.language,
            created_at=row.created_at,
            sent_at=row.sent_at,
            last_error=row.last_error,
        )
        for row in rows
    ]
