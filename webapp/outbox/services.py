"""Queueing transactional email with the business change, and delivering it with retries.

The flow: a service calls `queue_email(...)` inside its own transaction; the view commits
and then calls `deliver_now(...)` for a quick first try; whatever is still due is sent by the
`send-email` job through `deliver_pending(...)`. A message is claimed (leased) before it is
sent, so several workers never send the same row at the same time; a worker killed while
sending leaves its rows to be retried when the lease runs out (the message in flight may then
go twice, never more).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from emails.message import build_message_bytes
from emails.senders import PermanentFailure, TemporaryFailure
from webapp.core.leases import Lease
from webapp.db import Database
from webapp.outbox.gateway import Mailer, get_mailer
from webapp.outbox.models import OUTBOX_MOVES, OutboxMessage, OutboxStatus
from webapp.outbox.signals import permanent_failure
from webapp.site.services import get_site_settings

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_BASE",
    "RETRY_CAP",
    "deliver_now",
    "deliver_pending",
    "erase_local_mailbox_copies",
    "erase_outbox_messages",
    "get_mailer",
    "list_outbox",
    "outbox_counts",
    "queue_email",
    "retry_delay",
    "retry_failed_message",
    "run_permanent_failure_hooks",
    "site_context",
    "DeliveryCounts",
    "Mailer",
    "OutboxPage",
]

log = logging.getLogger("readership.outbox")

#: First retry after this long; each further retry waits twice as long ...
RETRY_BASE = timedelta(minutes=1)
#: ... but never longer than this.
RETRY_CAP = timedelta(hours=6)
#: After this many tries that failed temporarily the message is given up (about a day).
MAX_ATTEMPTS = 12


@dataclass
class DeliveryCounts:
    """What one delivery run did."""

    #: Accepted by the server.
    sent: int = 0
    #: Failed for now; will be tried again later.
    retried: int = 0
    #: Refused for good or given up; never tried again.
    failed: int = 0

    @property
    def total(self) -> int:
        """Messages this run handled."""
        return self.sent + self.retried + self.failed

    def __add__(self, other: DeliveryCounts) -> DeliveryCounts:
        return DeliveryCounts(
            self.sent + other.sent, self.retried + other.retried, self.failed + other.failed
        )

    def __str__(self) -> str:
        return f"sent {self.sent}, retry later {self.retried}, failed {self.failed}"


def site_context(session: Session, mailer: Mailer, language: str) -> dict[str, Any]:
    """The values every email layout shows, from the publication's settings."""
    settings = get_site_settings(session)
    return {
        "publication_name": settings.publication_name,
        "tagline": settings.tagline(language),
        "site_url": settings.site_url or "",
        "base_url": mailer.base_url,
        "logo_url": f"{mailer.base_url}/logo" if settings.logo_data else None,
        "primary_color": settings.primary_color,
        "accent_color": settings.accent_color,
        "postal_address": settings.postal_address or "",
    }


def queue_email(
    session: Session,
    mailer: Mailer,
    *,
    template: str,
    to: str,
    language: str,
    context: Mapping[str, Any],
    now: datetime,
    headers: Mapping[str, str] | None = None,
    subscriber_id: int | None = None,
    recipient: Mapping[str, str] | None = None,
) -> OutboxMessage:
    """Render `template` for `to` and add it to the outbox as pending (flushed, not committed).

    `recipient` holds the values that differ per person (links with tokens): they are filled
    into an email compiled once per template, language and `context`, so a burst of signups
    never runs MJML per message.

    The site-wide values (publication name, colours, site URL, postal address, base URL) are
    added to `context` here; `context` wins where both name a value. The recipient field
    `email` is `to`. The caller commits, in the same transaction as the change that caused
    the email, then may call `deliver_now` with the row's id.

    Raises `emails.UnknownEmail` for an unknown template, `jinja2.UndefinedError` when the
    context lacks a value the template needs, `emails.message.HeaderError` for a line break
    in `to` or in a header.
    """
    settings_context = site_context(session, mailer, language)
    per_person = dict(recipient or {})
    compiled = mailer.renderer.compile(
        template, language, {**settings_context, **context}, recipient_fields=tuple(per_person)
    )
    rendered = compiled.fill({**per_person, "email": to})
    # The fast writer (not the `email` package): a webhook burst queues a receipt per event.
    raw = build_message_bytes(
        rendered,
        sender=mailer.from_header(settings_context["publication_name"]),
        to=to,
        # Content-Language lets mail clients pick the right spell-checker and voice.
        headers={"Content-Language": language, **(headers or {})},
        message_id_domain=mailer.message_id_domain,
        date=now,
    )
    row = OutboxMessage(
        purpose=template,
        to_address=to,
        language=language,
        subject=rendered.subject[:998],
        raw=raw,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        subscriber_id=subscriber_id,
    )
    session.add(row)
    session.flush()
    return row


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th try failed: 1, 2, 4 ... minutes, at most 6 h."""
    exponent = min(max(attempts, 1) - 1, 30)
    delay: timedelta = RETRY_BASE * (2**exponent)
    return min(delay, RETRY_CAP)


def deliver_now(
    database: Database, mailer: Mailer, message_ids: Iterable[int], now: datetime
) -> DeliveryCounts:
    """Try the given messages right away, over one connection. Never raises: what fails stays
    pending with a backoff and the `send-email` job sends it later."""
    ids = [int(i) for i in message_ids]
    if not ids:
        return DeliveryCounts()
    try:
        lease = _lease(database, mailer, now)
        claimed = lease.claim([OutboxMessage.id.in_(ids)], limit=len(ids), order_by=_OLDEST_FIRST)
        return _deliver(database, mailer, lease, claimed, now)
    except Exception:  # the view already committed; the job will pick the rows up
        log.exception("immediate delivery of outbox messages %s failed", ids)
        return DeliveryCounts()


def deliver_pending(
    database: Database, mailer: Mailer, now: datetime, limit: int = 500
) -> DeliveryCounts:
    """Send up to `limit` messages that are due, oldest first, over one connection.

    4xx replies and connection problems: retried after `retry_delay`, given up as failed
    after `MAX_ATTEMPTS` tries. 5xx: failed at once, and the `permanent_failure` signal
    is sent. When the server is unreachable (or answers 421) the run stops and the rest of
    its batch waits for the next retry as well.
    """
    lease = _lease(database, mailer, now)
    claimed = lease.claim([], limit=limit, order_by=_OLDEST_FIRST)
    return _deliver(database, mailer, lease, claimed, now)


_OLDEST_FIRST = (OutboxMessage.next_attempt_at, OutboxMessage.id)


def _lease(database: Database, mailer: Mailer, now: datetime) -> Lease:
    # `now` is when the run began (tests pass a frozen clock); a lease needs time that moves
    # while the run sends, so the run's real elapsed time is added to it.
    started = time.monotonic()

    def moving_now() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    return Lease(database, OutboxMessage, OutboxStatus.PENDING, mailer.lease, moving_now)


def _deliver(
    database: Database, mailer: Mailer, lease: Lease, ids: list[int], now: datetime
) -> DeliveryCounts:
    counts = DeliveryCounts()
    if not ids:
        return counts
    sender = mailer.new_sender()
    try:
        with database.session() as session:
            for position, message_id in enumerate(ids):
                if not lease.holds(session, message_id):
                    continue  # the lease ran out and another worker took the row over
                message = session.get(OutboxMessage, message_id)
                if message is None:
                    continue  # erased while queued
                stop_run = False
                try:
                    sender.send(mailer.envelope_from, [message.to_address], message.raw)
                except PermanentFailure as exc:
                    if _fail(session, lease, message, _reason(exc)):
                        counts.failed += 1
                except TemporaryFailure as exc:
                    counts += _retry_or_give_up(session, lease, message, _reason(exc), now)
                    # No connection, or the server told us to go away: the others would
                    # fail the same way, one timeout each.
                    stop_run = exc.code is None or exc.code == 421
                except Exception as exc:  # a bug must not leave the row leased for nothing
                    log.exception("outbox message %s: unexpected error while sending", message.id)
                    counts += _retry_or_give_up(
                        session, lease, message, f"internal error: {exc!r}", now
                    )
                else:
                    if _record(
                        session, lease, message, OutboxStatus.SENT, sent_at=now, last_error=None
                    ):
                        counts.sent += 1
                # One commit per message: a crash loses at most the message in flight.
                session.commit()
                if stop_run:
                    counts += _postpone(session, lease, ids[position + 1 :], message, now)
                    break
    finally:
        sender.close()
    if counts.total:
        log.info("outbox delivery: %s", counts)
    return counts


def _reason(exc: TemporaryFailure | PermanentFailure) -> str:
    return str(exc)[:2000]


def _record(
    session: Session, lease: Lease, message: OutboxMessage, status: OutboxStatus, **values: Any
) -> bool:
    """Write a try's result if this run still holds the row (False: another run took it over
    while this one was sending, and has the say now)."""
    OUTBOX_MOVES.check(OutboxStatus(message.status), status, message.id)
    written = lease.finish(session, message.id, {"status": status.value, **values})
    if not written:
        log.warning("outbox message %s: lease lost while sending; result not recorded", message.id)
    session.expire(message)
    return written


def _retry_or_give_up(
    session: Session, lease: Lease, message: OutboxMessage, reason: str, now: datetime
) -> DeliveryCounts:
    if message.attempts >= MAX_ATTEMPTS:
        log.warning("outbox message %s to %s given up: %s", message.id, message.to_address, reason)
        reason = f"gave up after {message.attempts} tries: {reason}"
        given_up = _record(session, lease, message, OutboxStatus.FAILED, last_error=reason)
        return DeliveryCounts(failed=1) if given_up else DeliveryCounts()
    retry_at = now + retry_delay(message.attempts)
    again = _record(
        session, lease, message, OutboxStatus.PENDING, last_error=reason, next_attempt_at=retry_at
    )
    return DeliveryCounts(retried=1) if again else DeliveryCounts()


def _postpone(
    session: Session, lease: Lease, ids: list[int], failed: OutboxMessage, now: datetime
) -> DeliveryCounts:
    counts = DeliveryCounts()
    reason = failed.last_error or "not tried"
    for message_id in ids:
        message = session.get(OutboxMessage, message_id)
        if message is None or message_id not in lease.held:
            continue
        counts += _retry_or_give_up(session, lease, message, reason, now)
    session.commit()
    return counts


def _fail(session: Session, lease: Lease, message: OutboxMessage, reason: str) -> bool:
    """A 5xx: failed for good, and the permanent-failure hooks run (suppression)."""
    address = message.to_address
    log.warning("outbox message %s to %s refused: %s", message.id, address, reason)
    if not _record(session, lease, message, OutboxStatus.FAILED, last_error=reason):
        return False
    run_permanent_failure_hooks(session, address, reason)
    return True


def run_permanent_failure_hooks(session: Session, address: str, reason: str) -> None:
    """Send `permanent_failure`: call each of its receivers once, in the order they were
    connected, each in its own savepoint (outbox and digest deliveries both use it)."""
    # Not `permanent_failure.send`: that would stop at the first receiver that raises.
    for receiver in permanent_failure.receivers_for(None):
        try:
            with session.begin_nested():
                receiver(None, session=session, address=address, reason=reason)
        except Exception:  # a broken receiver must not lose the failure just recorded
            log.exception("permanent_failure receiver %r failed", receiver)


# --- Staff pages and erasure ---------------------------------------------------------------


@dataclass(frozen=True)
class OutboxPage:
    """One page of outbox rows."""

    rows: list[OutboxMessage]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))


def outbox_counts(session: Session) -> dict[OutboxStatus, int]:
    """How many rows are in each status."""
    counts = dict.fromkeys(OutboxStatus, 0)
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    for status, count in rows:
        counts[OutboxStatus(status)] = int(count)
    return counts


def list_outbox(
    session: Session,
    statuses: Iterable[OutboxStatus],
    page: int = 1,
    per_page: int = 50,
) -> OutboxPage:
    """Rows in `statuses`, newest first; a page past the end shows the last page."""
    wanted = list(statuses)
    total = int(
        session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status.in_(wanted))
        )
        or 0
    )
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_(wanted))
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return OutboxPage(rows, page, per_page, total)


def retry_failed_message(session: Session, message_id: int, now: datetime) -> OutboxMessage:
    """Queue a failed message again, due now, with a fresh count of tries (caller commits).

    Raises `LookupError` when there is no such row and `InvalidTransition` when it has not
    failed.
    """
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise LookupError(message_id)
    OUTBOX_MOVES.move(message, OutboxStatus.PENDING)
    message.attempts = 0
    message.next_attempt_at = now
    message.claimed_by = None
    return message


def erase_outbox_messages(
    session: Session, *, subscriber_id: int | None = None, address: str | None = None
) -> int:
    """Delete every outbox row of a person, by subscriber id and/or address (any case);
    returns how many (the caller commits)."""
    conditions = []
    if subscriber_id is not None:
        conditions.append(OutboxMessage.subscriber_id == subscriber_id)
    if address:
        conditions.append(func.lower(OutboxMessage.to_address) == address.strip().lower())
    if not conditions:
        return 0
    result = session.execute(
        delete(OutboxMessage).where(or_(*conditions)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def erase_local_mailbox_copies(mailer: Mailer, address: str) -> int:
    """Delete the local mailbox's copies of mail sent to `address` (erasure of a person).

    Files, not rows: call it after the erasure's commit. Returns how many were removed.
    """
    from emails.mailbox import LocalMailbox

    return LocalMailbox(mailer.mailbox_dir).remove_messages_to(address)
