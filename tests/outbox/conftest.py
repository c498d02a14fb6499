"""Small factories for outbox tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.outbox.gateway import Mailer, get_mailer
from webapp.outbox.models import OutboxMessage
from webapp.outbox.services import queue_email


def queue(
    session: Session,
    app: Flask,
    now: datetime,
    *,
    to: str = "reader@example.org",
    template: str = "staff_test",
    language: str = "en",
    context: dict[str, Any] | None = None,
    mailer: Mailer | None = None,
    **kwargs: Any,
) -> OutboxMessage:
    """Queue one email and commit, as a view does."""
    message = queue_email(
        session,
        mailer or get_mailer(app),
        template=template,
        to=to,
        language=language,
        context=context or {},
        now=now,
        **kwargs,
    )
    session.commit()
    return message


def reload(session: Session, message_id: int) -> OutboxMessage:
    """The row as it is in the database now."""
    session.expire_all()
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
    assert row is not None
    return row
