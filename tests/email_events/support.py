"""What the email-events tests read back: a subscriber's state and the events recorded."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.subscribers.factories import get_subscriber
from webapp.email_events.models import EmailEvent


def subscriber_state(session: Session, email: str) -> tuple[str, bool, str | None]:
    """(status, suppressed, suppression reason) of the subscriber, read afresh."""
    session.expire_all()
    subscriber = get_subscriber(session, email)
    assert subscriber is not None
    return (str(subscriber.status), subscriber.suppressed, subscriber.suppression_reason)


def event_rows(session: Session) -> int:
    """How many email events are recorded, read afresh."""
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(EmailEvent)) or 0)
