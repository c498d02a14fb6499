"""Subscribers, their consent records and history, and CSV import jobs.

Statuses are `StrEnum`s; each has one table of allowed moves (`SUBSCRIBER_MOVES`,
`IMPORT_MOVES`, see `webapp.core.states`) and exactly one function that moves a row between
states through it (`change_status`, `change_import_status`).
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.core.states import IllegalMove, StateMachine
from webapp.db import Base
from webapp.db import search_text as _search_text
from webapp.db import str_enum as _str_enum

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber stands on the list."""

    #: Signed up, confirmation link not followed yet; gets no digest.
    PENDING = "pending"
    #: Confirmed by double opt-in (or imported as such); gets the digest unless paused.
    CONFIRMED = "confirmed"
    #: Left the list (one-click link, preferences page, import or staff).
    UNSUBSCRIBED = "unsubscribed"
    #: The mailbox refused mail permanently; suppressed.
    BOUNCED = "bounced"


class InvalidTransition(IllegalMove):
    """A subscriber or import status change that its table does not allow."""


#: The only moves between statuses. Staying in the same status is no move: `change_status`
#: answers False and changes nothing.
SUBSCRIBER_MOVES = StateMachine(
    "subscriber",
    {
        SubscriberStatus.PENDING: {
            SubscriberStatus.CONFIRMED,
            SubscriberStatus.UNSUBSCRIBED,
            SubscriberStatus.BOUNCED,
        },
        SubscriberStatus.CONFIRMED: {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED},
        SubscriberStatus.UNSUBSCRIBED: {SubscriberStatus.CONFIRMED, SubscriberStatus.BOUNCED},
        SubscriberStatus.BOUNCED: {SubscriberStatus.CONFIRMED, SubscriberStatus.UNSUBSCRIBED},
    },
    error=InvalidTransition,
)


class SubscriberSource(enum.StrEnum):
    """Where a subscriber came from."""

    SIGNUP_PAGE = "signup_page"
    EMBED = "embed"
    IMPORT = "import"
    DONATION = "donation"
    STAFF = "staff"


class SuppressionReason(enum.StrEnum):
    """Why no mail goes to an address."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    STAFF = "staff"
    ERASED = "erased"


class EventKind(enum.StrEnum):
    """What a `SubscriberEvent` records."""

    SIGNUP = "signup"
    #: A signup form was sent again for a known address (no state change).
    SIGNUP_REPEATED = "signup_repeated"
    CONFIRMATION_SENT = "confirmation_sent"
    MANAGE_LINK_SENT = "manage_link_sent"
    CONFIRMED = "confirmed"
    WELCOME_SENT = "welcome_sent"
    RESUBSCRIBED = "resubscribed"
    PREFERENCES_CHANGED = "preferences_changed"
    PAUSED = "paused"
    RESUMED = "resumed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    SOFT_BOUNCE = "soft_bounce"
    SUPPRESSED = "suppressed"
    UNSUPPRESSED = "unsuppressed"
    IMPORTED = "imported"
    STATUS_CHANGED = "status_changed"
    ERASED = "erased"


class EventActor(enum.StrEnum):
    """Who caused an event."""

    READER = "reader"
    STAFF = "staff"
    SYSTEM = "system"
    IMPORT = "import"


class Subscriber(Base):
    """One address on the newsletter list."""

    __tablename__ = "subscribers"
    __table_args__ = (
        # The staff list pages by id (newest first) inside each filter.
        Index("ix_subscribers_status_id", "status", "id"),
        Index("ix_subscribers_language_id", "language", "id"),
        Index("ix_subscribers_source_id", "source", "id"),
        Index("ix_subscribers_created_at", "created_at"),
        # Reports count confirmations and unsubscribes in a week or a month.
        Index("ix_subscribers_confirmed_at", "confirmed_at"),
        Index("ix_subscribers_unsubscribed_at", "unsubscribed_at"),
        Index("ix_subscribers_name_key", "name_key"),
    )

    #: Surrogate key; also the staff list's paging key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Normalised, lower-cased address (email-validator, no DNS); unique.
    email: Mapped[str] = mapped_column(_search_text(254), unique=True)
    #: Name as given (may be empty).
    name: Mapped[str] = mapped_column(String(200), default="")
    #: `name` case-folded, for index-friendly prefix search.
    name_key: Mapped[str] = mapped_column(_search_text(200), default="")
    #: Main language: emails about the subscription and the digest come in it.
    language: Mapped[str] = mapped_column(String(8))
    #: Every language the digest is wanted in, comma-wrapped (",en,ru,"); includes `language`.
    digest_languages: Mapped[str] = mapped_column(String(100), default="")
    #: Where the subscriber stands; change it only with `change_status`.
    status: Mapped[SubscriberStatus] = mapped_column(
        _str_enum(SubscriberStatus), default=SubscriberStatus.PENDING
    )
    #: True while the reader paused the digest (still confirmed).
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the current pause started.
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: True when no mail may go to this address (bounce, complaint, staff, erasure).
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Why it is suppressed (`SuppressionReason`), NULL when not suppressed.
    suppression_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)
    #: When it was suppressed.
    suppressed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Where the subscriber came from (`SubscriberSource`).
    source: Mapped[SubscriberSource] = mapped_column(
        _str_enum(SubscriberSource), default=SubscriberSource.SIGNUP_PAGE
    )
    #: When the address first reached the list (the original date for imports).
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the subscription was (last) confirmed.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: When the subscriber (last) left the list.
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Last confirmation or "manage" email sent because of a signup: the per-address limit.
    last_confirmation_sent_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    #: Temporary delivery failures since the last success; too many suppress the address.
    soft_bounce_count: Mapped[int] = mapped_column(Integer, default=0)
    #: When the person was erased (the row only keeps non-personal facts then).
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The CSV import that added this subscriber (shown as the "imported" line of the
    #: history; one job row instead of one event row per imported person).
    import_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber_imports.id", ondelete="SET NULL"), nullable=True
    )

    consents: Mapped[list[ConsentRecord]] = relationship(
        back_populates="subscriber",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ConsentRecord.id",
    )
    events: Mapped[list[SubscriberEvent]] = relationship(
        back_populates="subscriber",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SubscriberEvent.id",
    )
    import_job: Mapped[ImportJob | None] = relationship()

    @property
    def languages(self) -> list[str]:
        """Digest languages, main language first."""
        extra = [code for code in self.digest_languages.split(",") if code]
        return [self.language] + [code for code in extra if code != self.language]

    @property
    def receives_digest(self) -> bool:
        """True when a digest may be sent: confirmed, not paused, not suppressed, not erased."""
        return (
            self.status == SubscriberStatus.CONFIRMED
            and not self.paused
            and not self.suppressed
            and self.erased_at is None
        )

    def __repr__(self) -> str:
        return f"<Subscriber {self.id} {self.status}>"


def pack_languages(languages: list[str] | tuple[str, ...]) -> str:
    """The stored form of a language list: ",en,ru," (so `LIKE '%,ru,%'` finds it)."""
    unique: list[str] = []
    for code in languages:
        if code and code not in unique:
            unique.append(code)
    return "," + ",".join(unique) + "," if unique else ""


def change_status(subscriber: Subscriber, target: SubscriberStatus, *, now: datetime) -> bool:
    """Move `subscriber` to `target`, stamping the matching timestamp.

    Returns False when it already was in `target` (nothing changes), True when it moved.
    Raises `InvalidTransition` for a move `SUBSCRIBER_MOVES` does not allow. Confirming
    clears a pause; unsubscribing keeps `confirmed_at` as history.
    """
    if SubscriberStatus(subscriber.status) == target:
        return False
    SUBSCRIBER_MOVES.move(subscriber, target)
    if target == SubscriberStatus.CONFIRMED:
        subscriber.confirmed_at = now
        subscriber.paused = False
        subscriber.paused_at = None
    elif target == SubscriberStatus.UNSUBSCRIBED:
        subscriber.unsubscribed_at = now
    return True


class ConsentRecord(Base):
    """Proof of consent: when, from which form and page, which wording, from where."""

    __tablename__ = "subscriber_consents"

    #: Surrogate key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Whose consent.
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    #: When the form was sent (the original opt-in time for imports).
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The form it came from (`SubscriberSource` value, or "import:<format>").
    source: Mapped[str] = mapped_column(String(40))
    #: The page the form was on, without query string (NULL when unknown).
    page_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: Version of the consent wording shown next to the form.
    wording_version: Mapped[str] = mapped_column(String(40))
    #: Language the form was shown in.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    #: Keyed hash of the IP that sent the form.
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Keyed hash of the browser's User-Agent.
    user_agent_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: When the confirmation link's button was pressed (NULL until then).
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Keyed hash of the IP that confirmed.
    confirm_ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    subscriber: Mapped[Subscriber] = relationship(back_populates="consents")


class SubscriberEvent(Base):
    """One line of a subscriber's history."""

    __tablename__ = "subscriber_events"
    __table_args__ = (Index("ix_subscriber_events_subscriber_id_at", "subscriber_id", "at"),)

    #: Surrogate key; orders events that share a time.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Whose history.
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    #: When it happened.
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: What happened (`EventKind` value).
    kind: Mapped[str] = mapped_column(String(40))
    #: Who caused it (`EventActor` value).
    actor: Mapped[str] = mapped_column(String(20), default=EventActor.SYSTEM.value)
    #: The staff user who acted, when `actor` is staff.
    staff_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    #: JSON object with details (how, from, to...); never the address itself.
    detail: Mapped[str] = mapped_column(Text, default="{}")

    subscriber: Mapped[Subscriber] = relationship(back_populates="events")


def add_event(
    session: Session,
    subscriber: Subscriber,
    kind: EventKind,
    *,
    now: datetime,
    actor: EventActor = EventActor.SYSTEM,
    staff_user_id: int | None = None,
    **detail: Any,
) -> SubscriberEvent:
    """Append one line to the subscriber's history. `detail` must never hold the address."""
    event = SubscriberEvent(
        subscriber=subscriber,
        at=now,
        kind=kind.value,
        actor=actor.value,
        staff_user_id=staff_user_id,
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str),
    )
    session.add(event)
    return event


class ImportStatus(enum.StrEnum):
    """Where a CSV import stands."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


#: The only moves between import statuses: queued, running, then finished or failed (a
#: queued import fails when it is refused before reading a row).
IMPORT_MOVES = StateMachine(
    "import",
    {
        ImportStatus.QUEUED: {ImportStatus.RUNNING, ImportStatus.FAILED},
        ImportStatus.RUNNING: {ImportStatus.FINISHED, ImportStatus.FAILED},
        ImportStatus.FINISHED: set(),
        ImportStatus.FAILED: set(),
    },
    error=InvalidTransition,
)


class ImportJob(Base):
    """One CSV import (from the staff page or the command line) and its progress."""

    __tablename__ = "subscriber_imports"

    #: Surrogate key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Where it stands; change it only with `change_import_status`.
    status: Mapped[ImportStatus] = mapped_column(
        _str_enum(ImportStatus), default=ImportStatus.QUEUED
    )
    #: File name as uploaded (for the staff's eyes only).
    filename: Mapped[str] = mapped_column(String(255), default="")
    #: Format asked for ("auto", "readership", "substack", "ghost", "mailchimp").
    requested_format: Mapped[str] = mapped_column(String(20), default="auto")
    #: Format found from the header row (NULL until read).
    detected_format: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: Text encoding asked for: "auto" (detected) or a codec name chosen by staff.
    requested_encoding: Mapped[str] = mapped_column(
        String(40), default="auto", server_default="auto"
    )
    #: Text encoding the file was read in (NULL until read).
    encoding: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: Language given to rows that name none.
    default_language: Mapped[str] = mapped_column(String(8))
    #: Who started it (NULL for the command line).
    staff_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    #: When it was asked for.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When reading started.
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: When it finished or failed.
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Data rows in the file (estimated from line count before reading).
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    #: Data rows read and committed so far.
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    #: New subscribers added.
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Existing subscribers changed (e.g. unsubscribed by the file).
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Rows about existing subscribers that changed nothing.
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Rows refused (see `rejections`).
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Rows imported with a date set to the import time (in the future or unreadable).
    dates_clamped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Why the whole import failed (not UTF-8, no email column...), NULL otherwise.
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    rejections: Mapped[list[ImportRejection]] = relationship(
        back_populates="job",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ImportRejection.line",
    )

    @property
    def percent(self) -> int:
        """Progress in whole percent (100 once finished)."""
        if self.status == ImportStatus.FINISHED:
            return 100
        if not self.total_rows:
            return 0
        return min(99, int(100 * self.processed_rows / self.total_rows))


def change_import_status(job: ImportJob, target: ImportStatus, *, now: datetime) -> None:
    """Move an import to `target` (by `IMPORT_MOVES`), stamping start/finish; raises
    `InvalidTransition` for a move the table lacks."""
    IMPORT_MOVES.move(job, target)
    if target == ImportStatus.RUNNING:
        job.started_at = now
    else:
        job.finished_at = now


class ImportRejection(Base):
    """One refused CSV row: its line number, the email cell and why."""

    __tablename__ = "subscriber_import_rejections"
    __table_args__ = (Index("ix_subscriber_import_rejections_job_id_line", "job_id", "line"),)

    #: Surrogate key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The import it belongs to.
    job_id: Mapped[int] = mapped_column(ForeignKey("subscriber_imports.id", ondelete="CASCADE"))
    #: Line number in the file (the header is line 1).
    line: Mapped[int] = mapped_column(Integer)
    #: The email cell as found (truncated), so staff can fix the row.
    value: Mapped[str] = mapped_column(String(300), default="")
    #: Reason code (`webapp.subscribers.csv_io.RejectReason`).
    reason: Mapped[str] = mapped_column(String(40))

    job: Mapped[ImportJob] = relationship(back_populates="rejections")
