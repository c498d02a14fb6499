"""The outbox: one row per transactional email, written in the same transaction as the
business change that caused it, delivered afterwards."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Enum, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.core.states import IllegalMove, StateMachine
from webapp.db import Base


class OutboxStatus(enum.StrEnum):
    """Where an outbox message stands."""

    #: Waiting for its first try or for a retry (see `next_attempt_at`).
    PENDING = "pending"
    #: Accepted by the SMTP server (or written to the local mailbox).
    SENT = "sent"
    #: Refused permanently, or still failing after the last retry; never tried again.
    FAILED = "failed"


class InvalidTransition(IllegalMove):
    """A status change the outbox does not allow (e.g. sent -> pending)."""


#: The only moves between statuses: a try that fails for now stays pending (a retry); a
#: failed message may be queued again by staff; a sent one is done.
OUTBOX_MOVES = StateMachine(
    "outbox message",
    {
        OutboxStatus.PENDING: {OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.FAILED},
        OutboxStatus.SENT: set(),
        OutboxStatus.FAILED: {OutboxStatus.PENDING},
    },
    error=InvalidTransition,
)


class OutboxMessage(Base):
    """A transactional email, with its MIME bytes ready to send."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The delivery worker's query: pending rows that are due, oldest first.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    #: Row id; also used in logs.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Which email this is: the template folder name, e.g. "confirm_subscription".
    purpose: Mapped[str] = mapped_column(String(64))
    #: The recipient's address.
    to_address: Mapped[str] = mapped_column(String(320), index=True)
    #: Language the email was rendered in.
    language: Mapped[str] = mapped_column(String(8))
    #: Subject line (a copy of the header, for the staff list).
    subject: Mapped[str] = mapped_column(String(998))
    #: The whole message as sent: MIME with CRLF line ends.
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    #: pending, sent or failed; changed only through `OUTBOX_MOVES`.
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(
            OutboxStatus,
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda members: [m.value for m in members],
            validate_strings=True,
        ),
        default=OutboxStatus.PENDING,
    )
    #: How many delivery tries started (a try is counted when it is claimed).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Not tried before this time: the retry backoff, or the lease of a worker sending it.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Random id of the worker that claimed the row for its current try (None when idle).
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: The last failure, e.g. "421 4.3.2 try later"; None once sent.
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: When the business change queued it.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the server accepted it.
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The subscriber it concerns, if any (no foreign key: erasure clears rows by this id).
    subscriber_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
