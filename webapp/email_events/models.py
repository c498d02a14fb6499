"""Every bounce, complaint or delivery report a relay sent us, once."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base
from webapp.db import str_enum as _str_enum


class EmailEventKind(enum.StrEnum):
    """What a relay said about one message to one address."""

    #: Refused for good (unknown mailbox, domain gone): the address is bounced and suppressed.
    HARD_BOUNCE = "hard_bounce"
    #: Refused for now (mailbox full, greylisted): counts toward the three-in-a-row rule.
    SOFT_BOUNCE = "soft_bounce"
    #: The reader marked it as spam: unsubscribed and suppressed.
    COMPLAINT = "complaint"
    #: Accepted by the receiving server; recorded for the figures, changes no one.
    DELIVERED = "delivered"


class EmailEvent(Base):
    """One event as a relay reported it. Providers retry and repeat: the pair
    (provider, event_key) is unique, so a repeat is recognised and changes nothing."""

    __tablename__ = "email_events"
    __table_args__ = (UniqueConstraint("provider", "event_key", name="uq_email_events_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Which endpoint it came through: "generic", "ses", "postmark", "mailgun", "sendgrid".
    provider: Mapped[str] = mapped_column(String(20))
    #: The provider's id of the event, or a hash of its content when it has none.
    event_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[EmailEventKind] = mapped_column(_str_enum(EmailEventKind, 20))
    #: The subscriber it was about, when the address is on the list (never the address
    #: itself: erasure deletes these rows with the subscriber).
    subscriber_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    #: The Message-ID of the message it is about, as the relay reported it ("" if none).
    message_id: Mapped[str] = mapped_column(String(300), default="")
    #: The digest delivery that Message-ID names (ours: `rd.<id>.…`), and its issue; None
    #: for transactional mail and for relays that report their own ids only.
    delivery_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    issue_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    #: When the relay says it happened.
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When we heard of it.
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The relay's diagnostic (an SMTP reply, a complaint type), the address scrubbed out.
    detail: Mapped[str] = mapped_column(Text, default="")
