"""Erasing a person: their personal data removed or pseudonymised in every table.

What happens to a subscriber who is erased:

* the subscriber row keeps only non-personal facts (id, language, source, dates, status
  "unsubscribed"); the address becomes a random `erased-…@erased.invalid`, the name is
  emptied, the row is suppressed with reason "erased" and hidden from staff lists;
* consent records are deleted; history events keep their kind and time, their details
  are emptied, and one "erased" event is added;
* outbox messages to the address or for the subscriber are scrubbed;
* rejected rows of past CSV imports that show the address are deleted;
* features that keep personal data elsewhere (donations, digest deliveries) receive the
  `erasing` signal (`webapp.subscribers.signals`, connected in `webapp.features`); each
  receiver runs in the same transaction, in the order they were connected, and one that
  raises `ErasureBlocked` stops the erasure;
* the audit log gets one entry whose details name the person only by a keyed hash of the
  address (so a repeated request can be checked against it without keeping the address).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.orm import Session

from webapp.core.addresses import email_fingerprint
from webapp.outbox.services import erase_outbox_messages
from webapp.subscribers import mail
from webapp.subscribers.models import (
    ConsentRecord,
    EventActor,
    EventKind,
    ImportRejection,
    Subscriber,
    SubscriberEvent,
    SubscriberStatus,
    SuppressionReason,
    add_event,
    change_status,
)
from webapp.subscribers.signals import ErasureBlocked, erasing

__all__ = ["ErasureBlocked", "erase_person", "erase_subscriber"]


def _send_erasing(session: Session, email: str, subscriber_id: int | None) -> None:
    # `send` calls the receivers one after the other and lets an exception (ErasureBlocked)
    # through, so the caller's rollback undoes everything done so far.
    erasing.send(None, session=session, email=email, subscriber_id=subscriber_id)


def erase_subscriber(
    session: Session,
    subscriber: Subscriber,
    *,
    staff: Any,
    secret: str,
    now: datetime,
    ip: str | None,
) -> str:
    """Erase the person behind `subscriber` everywhere; returns the hash kept in the audit
    log. Raises `ValueError` when the subscriber was erased already. The caller commits."""
    from webapp.staff.services import record_audit

    if subscriber.erased_at is not None:
        raise ValueError("already erased")
    email = subscriber.email
    fingerprint = email_fingerprint(email, secret)
    subscriber_id = subscriber.id

    mail.scrub_outbox(session, subscriber_ids=[subscriber_id], addresses=[email])
    session.execute(
        delete(ImportRejection).where(
            func.lower(ImportRejection.value).contains(email, autoescape=True)
        )
    )
    _send_erasing(session, email, subscriber_id)
    session.execute(delete(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id))
    session.execute(
        update(SubscriberEvent)
        .where(SubscriberEvent.subscriber_id == subscriber_id)
        .values(detail="{}")
        .execution_options(synchronize_session=False)
    )
    session.expire(subscriber, ["consents", "events"])

    if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        change_status(subscriber, SubscriberStatus.UNSUBSCRIBED, now=now)
    subscriber.email = f"erased-{subscriber_id}-{secrets.token_hex(6)}@erased.invalid"
    subscriber.name = ""
    subscriber.name_key = ""
    subscriber.paused = False
    subscriber.paused_at = None
    subscriber.suppressed = True
    subscriber.suppression_reason = SuppressionReason.ERASED.value
    subscriber.suppressed_at = now
    subscriber.last_confirmation_sent_at = None
    subscriber.erased_at = now
    add_event(
        session,
        subscriber,
        EventKind.ERASED,
        now=now,
        actor=EventActor.STAFF,
        staff_user_id=getattr(staff, "id", None),
    )
    record_audit(
        session,
        actor=staff,
        action="subscribers.erase",
        target_type="subscriber",
        target_id=subscriber_id,
        details={"email_hash": fingerprint},
        ip=ip,
        now=now,
    )
    session.flush()
    return fingerprint


def erase_person(
    session: Session, email: str, *, staff: Any, secret: str, now: datetime, ip: str | None
) -> str:
    """Erase everything about `email`, whether or not the person ever subscribed (a donor
    who only gave); returns the hash kept in the audit log. Raises `ErasureBlocked` (and
    changes nothing) when a feature must not let go yet. The caller commits."""
    from webapp.staff.services import record_audit
    from webapp.subscribers.services import find_subscriber

    subscriber = find_subscriber(session, email)
    if subscriber is not None and subscriber.erased_at is None:
        return erase_subscriber(session, subscriber, staff=staff, secret=secret, now=now, ip=ip)
    fingerprint = email_fingerprint(email, secret)
    erase_outbox_messages(session, address=email)
    session.execute(
        delete(ImportRejection).where(
            func.lower(ImportRejection.value).contains(email, autoescape=True)
        )
    )
    _send_erasing(session, email, None)
    record_audit(
        session,
        actor=staff,
        action="subscribers.erase",
        target_type="person",
        details={"email_hash": fingerprint},
        ip=ip,
        now=now,
    )
    session.flush()
    return fingerprint
