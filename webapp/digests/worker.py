"""The sending engine: approval writes one delivery row per (issue, subscriber); workers claim
batches of due rows, send them over one reused SMTP connection and record each result in its
own commit.

Why this is exactly-once: a row is sent only by the worker run that holds its lease
(`webapp.core.leases`: checked, and renewed for the whole batch when it runs low, before every
message), and it is marked sent in a commit right after the server accepted it, by an UPDATE
that matches only while the run still holds the row. A worker killed between the server's
"250 OK" and that commit, or a send that outlasts the whole lease, leaves that one message to
be sent again by another run. That message in flight is the only one that can go twice;
every other row is either committed as sent (never sent again) or still pending (sent later).

Readers who leave while an issue is going out are checked right before their message: a
delivery whose subscriber is no longer confirmed, paused the digest, dropped the language or
was suppressed is marked skipped, not sent.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from emails.senders import PermanentFailure, Sender, TemporaryFailure
from webapp.core.leases import Lease
from webapp.db import Database
from webapp.digests.content import IssueEmail, compile_issue
from webapp.digests.lifecycle import eligible_subscribers, finish_done_issues, pause_issue
from webapp.digests.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestIssue,
    IssueStatus,
)
from webapp.donations.models import Donor, current_donor_condition
from webapp.outbox import services as outbox
from webapp.outbox.services import Mailer
from webapp.subscribers.models import Subscriber

log = logging.getLogger("readership.digests")


#: A batch re-reads its issues' status after this many messages (a pause takes effect then).
STATUS_CHECK_EVERY = 20


@dataclass(frozen=True)
class EngineSettings:
    """How workers send (from the app configuration, see `engine_settings`)."""

    #: Messages per second per worker; 0 for no limit.
    rate_per_second: float = 0.0
    #: Rows claimed at once.
    batch_size: int = 200
    #: Tries (4xx replies, connection errors) before a delivery is given up as failed.
    max_attempts: int = 8
    #: Pause the issue when more than this share of finished deliveries failed ...
    pause_failure_rate: float = 0.2
    #: ... once at least this many are finished.
    pause_min_finished: int = 50
    #: The address of `List-Unsubscribe`'s mailto: form (None: the HTTPS link alone).
    unsubscribe_mailto: str | None = None


def engine_settings(config: Any) -> EngineSettings:
    """`EngineSettings` from a Flask app's config."""
    return EngineSettings(
        rate_per_second=float(config.get("DIGEST_SEND_RATE", 0) or 0),
        batch_size=int(config.get("DIGEST_BATCH_SIZE", 200)),
        max_attempts=int(config.get("DIGEST_MAX_ATTEMPTS", 8)),
        pause_failure_rate=float(config.get("DIGEST_PAUSE_FAILURE_RATE", 0.2)),
        pause_min_finished=int(config.get("DIGEST_PAUSE_MIN_FINISHED", 50)),
        unsubscribe_mailto=config.get("LIST_UNSUBSCRIBE_MAILTO") or None,
    )


# --- Workers ---------------------------------------------------------------------------------


@dataclass
class SendCounts:
    """What one worker run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    #: Rows another run took over because this run's lease on them ran out.
    lost: int = 0
    #: Issues that finished during the run.
    finished: list[int] = field(default_factory=list)

    @property
    def handled(self) -> int:
        """Rows this run dealt with."""
        return self.sent + self.retried + self.failed + self.skipped

    def __str__(self) -> str:
        text = (
            f"digest: sent {self.sent}, retry later {self.retried}, failed {self.failed}, "
            f"skipped {self.skipped}"
        )
        if self.lost:
            text += f"; {self.lost} taken over by another worker (lease ran out)"
        if self.finished:
            text += f"; finished issue(s) {', '.join(map(str, self.finished))}"
        return text


@dataclass
class Worker:
    """One sending run: claims batches until nothing is due (or the server says stop).

    `on_progress(counts)` is called after every message (the command line's progress bar).
    `sleep` and `monotonic` pace the rate limit (tests pass fakes).
    """

    database: Database
    mailer: Mailer
    secret: str
    now: Callable[[], datetime]
    settings: EngineSettings = field(default_factory=EngineSettings)
    issue_id: int | None = None
    on_progress: Callable[[SendCounts], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    #: Stop after this many messages (None: until nothing is due).
    limit: int | None = None
    #: Claim no new batch after this many seconds (the scheduler starts the next run).
    time_budget: float | None = None
    counts: SendCounts = field(default_factory=SendCounts)
    _emails: dict[int, IssueEmail] = field(default_factory=dict)

    def run(self) -> SendCounts:
        """Send everything that is due now; returns what happened."""
        sender = self.mailer.new_sender()
        started = self.monotonic()
        # The next message is built in a helper thread while this one waits for the server.
        # When the reply comes, this thread must get the interpreter back at once, not after
        # Python's default 5 ms switch interval (longer than a local SMTP round trip).
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, 0.0005))
        try:
            while self.limit is None or self.counts.handled < self.limit:
                if self.time_budget is not None and self.monotonic() - started > self.time_budget:
                    break
                wanted = self.settings.batch_size
                if self.limit is not None:
                    wanted = min(wanted, self.limit - self.counts.handled)
                lease, claimed = self.claim(wanted)
                if not claimed:
                    break
                carry_on = self._send_batch(sender, lease, claimed, started)
                self.counts.lost += lease.lost
                if not carry_on:
                    break
        finally:
            sys.setswitchinterval(switch_interval)
            sender.close()
        with self.database.session() as session:
            self.counts.finished += finish_done_issues(session, self.now())
            session.commit()
        if self.counts.handled:
            log.info("%s", self.counts)
        return self.counts

    def claim(self, limit: int) -> tuple[Lease, list[int]]:
        """Lease up to `limit` due rows of sending issues to this run."""
        sending = select(DigestIssue.id).where(DigestIssue.status == IssueStatus.SENDING)
        if self.issue_id is not None:
            sending = sending.where(DigestIssue.id == self.issue_id)
        lease = Lease(
            self.database, DigestDelivery, DeliveryStatus.PENDING, self.mailer.lease, self.now
        )
        claimed = lease.claim(
            [DigestDelivery.issue_id.in_(sending)], limit=limit, order_by=[DigestDelivery.id]
        )
        return lease, claimed

    def _issue_email(self, session: Session, issue_id: int) -> IssueEmail:
        compiled = self._emails.get(issue_id)
        if compiled is None:
            issue = session.get(DigestIssue, issue_id)
            assert issue is not None
            compiled = compile_issue(
                session,
                self.mailer,
                issue,
                secret=self.secret,
                now=self.now(),
                unsubscribe_mailto=self.settings.unsubscribe_mailto,
            )
            self._emails[issue_id] = compiled
        return compiled

    def _send_batch(self, sender: Sender, lease: Lease, ids: list[int], started: float) -> bool:
        """Send the claimed rows; False when the run should stop (server unreachable, 421).

        Readers and issue statuses are read for the batch, then again every
        `STATUS_CHECK_EVERY` messages and after any failure: someone who unsubscribes, or an
        issue staff pause, takes effect within a few messages, without a query per message.
        """
        with self.database.session() as session, _Prebuilder() as prebuilt:
            donors = _donor_emails(session, ids, self.now())
            readers: dict[int, tuple[int, _Subscriber | None]] = {}
            sending: set[int] = set()
            checked_at = -STATUS_CHECK_EVERY
            failures_seen = -1
            for position, delivery_id in enumerate(ids):
                if position - checked_at >= STATUS_CHECK_EVERY or failures_seen != (
                    self.counts.failed + self.counts.retried
                ):
                    checked_at = position
                    failures_seen = self.counts.failed + self.counts.retried
                    readers = _readers(session, ids[position:], lease.token)
                    sending = _sending_issues(session, {r[0] for r in readers.values()})
                reader = readers.get(delivery_id)
                if reader is None:
                    lease.forget(delivery_id)  # the lease ran out and another run took it
                    continue
                issue_id, subscriber = reader
                if issue_id not in sending:
                    self._release(session, lease, [delivery_id])
                    continue
                if subscriber is None or not subscriber.wants_issue:
                    if self._record(session, lease, delivery_id, DeliveryStatus.SKIPPED, None):
                        self.counts.skipped += 1
                    continue
                self._pace(started)
                if not lease.holds(session, delivery_id):
                    continue  # the lease ran out and another run took the row over
                now = self.now()
                try:
                    message = prebuilt.take(
                        delivery_id,
                        self._builder(session, delivery_id, issue_id, subscriber, donors),
                    )
                    self._build_next(session, prebuilt, ids, position, readers, sending, donors)
                    sender.send(self.mailer.envelope_from, [subscriber.email], message)
                except PermanentFailure as exc:
                    self._fail(session, lease, delivery_id, subscriber.email, str(exc))
                except TemporaryFailure as exc:
                    self._retry(session, lease, delivery_id, str(exc))
                    if exc.code is None or exc.code == 421:
                        # No connection, or the server asked us to go away: the rest of the
                        # batch would fail the same way, one timeout each.
                        self._release(session, lease, ids[position + 1 :], delay_for=str(exc))
                        return False
                except Exception as exc:  # a bug must not leave the row leased for nothing
                    log.exception("digest delivery %s: unexpected error", delivery_id)
                    self._retry(session, lease, delivery_id, f"internal error: {exc!r}")
                else:
                    if self._record(session, lease, delivery_id, DeliveryStatus.SENT, None, now):
                        self.counts.sent += 1
                if self.on_progress is not None:
                    self.on_progress(self.counts)
        return True

    def _builder(
        self,
        session: Session,
        delivery_id: int,
        issue_id: int,
        subscriber: _Subscriber,
        donors: set[str],
    ) -> Callable[[], bytes]:
        """A function building one reader's message (the compiled issue is loaded here, on
        the calling thread, because it may need the database)."""
        email = self._issue_email(session, issue_id)

        def build() -> bytes:
            return email.message_for(
                subscriber_id=subscriber.id,
                email=subscriber.email,
                name=subscriber.name,
                is_donor=subscriber.email in donors,
                now=self.now(),
                delivery_id=delivery_id,
            )

        return build

    def _build_next(
        self,
        session: Session,
        prebuilt: _Prebuilder,
        ids: list[int],
        position: int,
        readers: dict[int, tuple[int, _Subscriber | None]],
        sending: set[int],
        donors: set[str],
    ) -> None:
        """Start building the next reader's message while this one is on the wire. Whether
        the next reader still gets it is decided again at its turn."""
        if position + 1 >= len(ids):
            return
        next_id = ids[position + 1]
        reader = readers.get(next_id)
        if reader is None or reader[0] not in sending or reader[1] is None:
            return
        prebuilt.ahead(next_id, self._builder(session, next_id, reader[0], reader[1], donors))

    def _pace(self, started: float) -> None:
        rate = self.settings.rate_per_second
        if rate <= 0:
            return
        due_at = started + self.counts.sent / rate
        wait = due_at - self.monotonic()
        if wait > 0:
            self.sleep(wait)

    def _record(
        self,
        session: Session,
        lease: Lease,
        delivery_id: int,
        status: DeliveryStatus,
        error: str | None,
        sent_at: datetime | None = None,
    ) -> bool:
        """Write a row's result and commit; False when another run holds the row now."""
        # One commit per message: a crash loses at most the message in flight.
        written = lease.finish(
            session,
            delivery_id,
            {"status": status.value, "last_error": error, "sent_at": sent_at},
        )
        session.commit()
        if not written:
            log.warning("digest delivery %s: lease lost before its result was written", delivery_id)
        return written

    def _retry(self, session: Session, lease: Lease, delivery_id: int, reason: str) -> None:
        attempts = int(
            session.scalar(select(DigestDelivery.attempts).where(DigestDelivery.id == delivery_id))
            or 0
        )
        if attempts >= self.settings.max_attempts:
            if self._record(
                session,
                lease,
                delivery_id,
                DeliveryStatus.FAILED,
                f"gave up after {attempts} tries: {reason}"[:2000],
            ):
                self.counts.failed += 1
                self._maybe_pause(session, delivery_id)
            return
        written = lease.finish(
            session,
            delivery_id,
            {
                "last_error": reason[:2000],
                "next_attempt_at": self.now() + outbox.retry_delay(attempts),
            },
        )
        session.commit()
        if written:
            self.counts.retried += 1

    def _release(
        self, session: Session, lease: Lease, ids: Iterable[int], *, delay_for: str | None = None
    ) -> None:
        """Give this run's claimed rows back untried (their try is not counted)."""
        values: dict[str, Any] = {
            "attempts": DigestDelivery.attempts - 1,
            "next_attempt_at": self.now() + (outbox.retry_delay(1) if delay_for else timedelta()),
        }
        if delay_for:
            values["last_error"] = f"not tried: {delay_for}"[:2000]
        released = lease.release(session, ids, values)
        session.commit()
        if delay_for:
            self.counts.retried += released

    def _fail(
        self, session: Session, lease: Lease, delivery_id: int, address: str, reason: str
    ) -> None:
        log.warning("digest delivery %s to %s refused: %s", delivery_id, address, reason)
        written = lease.finish(
            session,
            delivery_id,
            {"status": DeliveryStatus.FAILED.value, "last_error": reason[:2000]},
        )
        if not written:
            session.commit()
            return
        # The same hooks as transactional mail: a 5xx suppresses the address.
        outbox.run_permanent_failure_hooks(session, address, reason)
        session.commit()
        self.counts.failed += 1
        self._maybe_pause(session, delivery_id)

    def _maybe_pause(self, session: Session, delivery_id: int) -> None:
        issue_id = session.scalar(
            select(DigestDelivery.issue_id).where(DigestDelivery.id == delivery_id)
        )
        counts: dict[Any, int] = {
            row[0]: row[1]
            for row in session.execute(
                select(DigestDelivery.status, func.count())
                .where(
                    DigestDelivery.issue_id == issue_id,
                    DigestDelivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]),
                )
                .group_by(DigestDelivery.status)
            ).all()
        }
        failed = int(counts.get(DeliveryStatus.FAILED, 0))
        finished = failed + int(counts.get(DeliveryStatus.SENT, 0))
        if finished < self.settings.pause_min_finished:
            return
        if failed / finished <= self.settings.pause_failure_rate:
            return
        issue = session.get(DigestIssue, issue_id)
        if issue is None or issue.status != IssueStatus.SENDING:
            return
        last_error = session.scalar(
            select(DigestDelivery.last_error).where(DigestDelivery.id == delivery_id)
        )
        pause_issue(
            session,
            issue,
            now=self.now(),
            note=f"error-threshold: {failed} of {finished} failed; last error: {last_error}",
        )
        session.commit()
        log.warning(
            "digest issue %s paused: %s of %s deliveries failed", issue_id, failed, finished
        )


class _Prebuilder:
    """Builds the next message in a thread while the current one is on the wire: filling in
    and encoding then overlap the SMTP round trips instead of adding to them."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-build")
        self._pending: tuple[int, Future[bytes]] | None = None

    def ahead(self, key: int, build: Callable[[], bytes]) -> None:
        """Start `build` for `key` (replacing any unclaimed one)."""
        self._pending = (key, self._pool.submit(build))

    def take(self, key: int, build: Callable[[], bytes]) -> bytes:
        """The message built ahead for `key`, or `build()` now when there is none."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == key:
            return pending[1].result()
        return build()

    def __enter__(self) -> _Prebuilder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _Subscriber:
    id: int
    email: str
    name: str
    #: Still meets `eligible_subscribers` for the delivery's issue, as of this reading.
    wants_issue: bool


def _readers(
    session: Session, ids: list[int], token: str
) -> dict[int, tuple[int, _Subscriber | None]]:
    """Issue and the subscriber's current state of the rows this run still holds (the
    subscriber is None once erased)."""
    rows = session.execute(
        select(
            DigestDelivery.id,
            DigestIssue.id,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            # The very condition approval selected by, asked again at the reader's turn.
            eligible_subscribers(DigestIssue.language),
        )
        .select_from(DigestDelivery)
        .join(DigestIssue, DigestIssue.id == DigestDelivery.issue_id)
        .outerjoin(Subscriber, Subscriber.id == DigestDelivery.subscriber_id)
        .where(DigestDelivery.id.in_(ids), DigestDelivery.claimed_by == token)
    )
    found: dict[int, tuple[int, _Subscriber | None]] = {}
    for delivery_id, issue_id, subscriber_id, email, name, wants in rows:
        subscriber = (
            _Subscriber(subscriber_id, email, name, bool(wants))
            if subscriber_id is not None
            else None
        )
        found[int(delivery_id)] = (int(issue_id), subscriber)
    return found


def _sending_issues(session: Session, issue_ids: set[int]) -> set[int]:
    """Those of `issue_ids` that are still being sent (not paused)."""
    if not issue_ids:
        return set()
    return set(
        session.scalars(
            select(DigestIssue.id).where(
                DigestIssue.id.in_(issue_ids), DigestIssue.status == IssueStatus.SENDING
            )
        )
    )


def _donor_emails(session: Session, delivery_ids: list[int], now: datetime) -> set[str]:
    """Addresses among these deliveries' subscribers that belong to current donors."""
    emails = (
        select(Subscriber.email)
        .join(DigestDelivery, DigestDelivery.subscriber_id == Subscriber.id)
        .where(DigestDelivery.id.in_(delivery_ids))
    )
    return set(
        session.scalars(
            select(Donor.email).where(Donor.email.in_(emails), current_donor_condition(now))
        )
    )
