"""The weekly digest: its settings, the issues, and one delivery row per (issue, subscriber)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, str_enum


class DigestSettings(Base):
    """When issues are built and whether they go out on their own; one row (id 1)."""

    __tablename__ = "digest_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    #: Day of the week issues are built, Monday = 0.
    weekday: Mapped[int] = mapped_column(Integer, default=3)
    #: Time of day issues are built ("HH:MM", in `timezone`).
    send_time: Mapped[str] = mapped_column(String(5), default="08:00")
    #: IANA time zone of `weekday` and `send_time`, e.g. "Europe/Berlin".
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: True: a built issue is approved and sent at once. False: it waits for staff.
    auto_send: Mapped[bool] = mapped_column(Boolean, default=False)
    #: At most this many "new this week" articles per issue.
    new_articles_limit: Mapped[int] = mapped_column(Integer, default=12)
    #: Languages whose issues link straight to the articles (no counting `/r/` redirect),
    #: e.g. where the redirect's host would be blocked; every other language is counted.
    plain_link_languages: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IssueStatus(enum.StrEnum):
    """Where an issue stands."""

    #: Nothing to send (no new articles); kept so staff see why there was no issue.
    SKIPPED = "skipped"
    #: Built, waiting for staff to approve (or being edited).
    DRAFT = "draft"
    #: Approved: delivery rows exist and workers are sending.
    SENDING = "sending"
    #: Stopped by staff or by the error threshold; resumes where it stopped.
    PAUSED = "paused"
    #: Every delivery row is done (sent, failed or skipped).
    SENT = "sent"


class DigestIssue(Base):
    """One issue of the digest in one language."""

    __tablename__ = "digest_issues"
    __table_args__ = (
        # One scheduled build per language and slot, even with two schedulers.
        UniqueConstraint("language", "slot", name="uq_digest_issues_language_slot"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[IssueStatus] = mapped_column(str_enum(IssueStatus), default=IssueStatus.DRAFT)
    #: The scheduled time (UTC) this issue was built for; NULL for builds run by hand.
    slot: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    subject: Mapped[str] = mapped_column(String(300), default="")
    #: The opening paragraph(s), plain text; blank lines separate paragraphs.
    intro: Mapped[str] = mapped_column(Text, default="")
    #: The articles in order: [{"article_id": 1, "section": "top" | "new"}, ...].
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Why the issue was skipped or paused (shown to staff).
    note: Mapped[str] = mapped_column(Text, default="")
    #: New articles are those published or imported after this time (the previous approved
    #: issue's build) that no approved issue carried.
    new_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Staff user who approved it (NULL when sent automatically).
    approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Delivery rows created at approval.
    recipients: Mapped[int] = mapped_column(Integer, default=0)


#: Issues that went (or are going) to readers: what they carry is no longer new.
CARRYING_STATUSES = (IssueStatus.SENDING, IssueStatus.PAUSED, IssueStatus.SENT)


class IssueArticle(Base):
    """An article an approved issue carries (written at approval from its `items`): the
    record that makes every article reach one issue as new, and none twice."""

    __tablename__ = "digest_issue_articles"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("digest_issues.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    #: "top" or "new", as in the issue's items.
    section: Mapped[str] = mapped_column(String(8))


class DeliveryStatus(enum.StrEnum):
    """Where one delivery stands."""

    #: Not sent yet (or waiting for a retry, see `next_attempt_at`).
    PENDING = "pending"
    #: The SMTP server accepted it.
    SENT = "sent"
    #: Refused for good (5xx) or still failing after the last retry.
    FAILED = "failed"
    #: Not sent because the reader left, paused or was suppressed before their turn.
    SKIPPED = "skipped"


class DigestDelivery(Base):
    """One issue to one subscriber: the durable record that makes sending exactly-once."""

    __tablename__ = "digest_deliveries"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id", name="uq_digest_deliveries_issue_subscriber"),
        # The workers' claim query and the progress counts.
        Index("ix_digest_deliveries_issue_status_due", "issue_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("digest_issues.id", ondelete="CASCADE"))
    #: No foreign key: erasure deletes the subscriber and then these rows by this id.
    subscriber_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    #: Tries started (counted when a worker claims the row).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Not tried before this time: a retry's backoff, or the lease of the worker holding it.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Random token of the worker run holding the row; NULL when idle.
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LinkClick(Base):
    """How often one link of one issue was followed through the `/r/` redirect: a count per
    (issue, link), with nothing about who followed it."""

    __tablename__ = "digest_link_clicks"
    __table_args__ = (
        UniqueConstraint("issue_id", "url_hash", name="uq_digest_link_clicks_issue_url"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("digest_issues.id", ondelete="CASCADE"))
    #: SHA-256 (hex) of `url`: the key, since a long URL is too wide for a unique index.
    url_hash: Mapped[str] = mapped_column(String(64))
    #: The link as the issue carried it (UTM tags included).
    url: Mapped[str] = mapped_column(Text)
    #: GET requests counted.
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    #: Time of the first and the latest counted click.
    first_clicked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_clicked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
