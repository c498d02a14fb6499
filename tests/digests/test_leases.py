"""The one lease mechanism (`webapp.core.leases`) as the digest worker and the outbox use it:
a run sends only rows it still holds, renews its leases while it works (a slow relay or a low
rate never lets them lapse), stops sending rows another run took over, and gives back only
its own rows. In-process, with the frozen clock moved by the test; the real-process model
test is `test_sending_model.py`."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.digests.factories import approved_issue, deliveries, statuses
from tests.helpers.smtp import SmtpSink
from tests.outbox.conftest import queue
from webapp.core.clock import FrozenClock
from webapp.core.leases import Lease, LeaseTerms
from webapp.db import get_database
from webapp.digests.models import DeliveryStatus, DigestDelivery
from webapp.digests.services import EngineSettings, SendCounts, Worker
from webapp.outbox import services as outbox
from webapp.outbox.gateway import get_mailer
from webapp.outbox.models import OutboxMessage, OutboxStatus

LEASE = timedelta(seconds=10)


def short_leases(app: Flask, send_budget: float = 1.0) -> None:
    get_mailer(app).lease = LeaseTerms(LEASE, timedelta(seconds=send_budget))


def worker(app: Flask, clock: FrozenClock, **options: object) -> Worker:
    settings = EngineSettings(**options.pop("settings", {}))  # type: ignore[arg-type]
    return Worker(
        get_database(app),
        get_mailer(app),
        secret=app.config["SECRET_KEY"],
        now=clock.now,
        settings=settings,
        **options,  # type: ignore[arg-type]
    )


def received(sink: SmtpSink) -> Counter[str]:
    return Counter(message.rcpt_tos[0] for message in sink.messages)


def test_a_slow_worker_renews_its_leases_so_a_second_worker_takes_nothing_over(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    """0.2 messages a second with a 10 s lease: the batch of 8 takes 40 s, four leases.
    Before the fix the rows' lease ran out after two messages and a second worker sent the
    rest again."""
    short_leases(app)
    issue_id, readers = approved_issue(app, db_session, clock, 8)
    rival_counts: list[SendCounts] = []

    def rival_runs(_counts: SendCounts) -> None:
        # Between every two messages of the slow worker, another worker looks for due rows.
        rival_counts.append(worker(app, clock).run())

    slow = worker(
        app,
        clock,
        settings={"rate_per_second": 0.2},
        sleep=lambda seconds: clock.advance(seconds=seconds),
        monotonic=lambda: clock.now().timestamp(),
        on_progress=rival_runs,
    )
    counts = slow.run()
    assert counts.sent == 8 and counts.lost == 0
    assert sum(c.sent for c in rival_counts) == 0
    assert received(smtp_sink) == Counter(reader.email for reader in readers)
    assert statuses(db_session, issue_id) == {"sent": 8}


def test_a_worker_that_lost_its_rows_sends_none_of_them(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    """A worker stalled past its lease (a long GC pause, a suspended VM) while another took
    its rows over: it notices at its next message and sends nothing of what it lost."""
    short_leases(app)
    issue_id, readers = approved_issue(app, db_session, clock, 6)
    stalled = worker(app, clock)
    lease, claimed = stalled.claim(10)
    assert len(claimed) == 6
    clock.advance(seconds=LEASE.total_seconds() + 1)
    # Other workers claim the expired rows: one sends two of them, one holds the other four.
    rival = worker(app, clock, limit=2)
    assert rival.run().sent == 2
    taken = worker(app, clock)
    rival_lease, rival_claimed = taken.claim(10)
    assert len(rival_claimed) == 4
    # The stalled worker wakes up and carries on with its old batch.
    stalled._send_batch(get_mailer(app).new_sender(), lease, claimed, started=0.0)
    assert stalled.counts.sent == 0 and lease.lost == 6
    assert sum(received(smtp_sink).values()) == 2
    # Its rival finishes them: everyone once.
    taken._send_batch(get_mailer(app).new_sender(), rival_lease, rival_claimed, started=0.0)
    assert received(smtp_sink) == Counter(reader.email for reader in readers)
    assert statuses(db_session, issue_id) == {"sent": 6}


def test_release_gives_back_only_the_run_s_own_rows(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    short_leases(app)
    issue_id, _readers = approved_issue(app, db_session, clock, 4)
    first = worker(app, clock)
    lease, claimed = first.claim(10)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    second = worker(app, clock)
    second_lease, second_claimed = second.claim(2)
    assert len(second_claimed) == 2
    with get_database(app).session() as session:
        # The first run gives back its whole old batch (the issue was paused, say).
        first._release(session, lease, claimed)
    rows = deliveries(db_session, issue_id)
    held = {row.id for row in rows.values() if row.claimed_by == second_lease.token}
    assert held == set(second_claimed)
    # The second run's rows kept their try count; the released ones lost the try not made.
    assert all(rows[s].attempts == 2 for s in rows if rows[s].id in held)
    assert all(rows[s].attempts == 0 for s in rows if rows[s].id not in held)


def test_a_result_is_not_written_over_a_row_another_run_holds(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    short_leases(app)
    issue_id, _readers = approved_issue(app, db_session, clock, 1)
    database = get_database(app)
    terms = get_mailer(app).lease
    old = Lease(database, DigestDelivery, DeliveryStatus.PENDING, terms, clock.now)
    [row_id] = old.claim([], limit=5, order_by=[DigestDelivery.id])
    clock.advance(seconds=LEASE.total_seconds() + 1)
    new = Lease(database, DigestDelivery, DeliveryStatus.PENDING, terms, clock.now)
    assert new.claim([], limit=5, order_by=[DigestDelivery.id]) == [row_id]
    with database.session() as session:
        assert not old.holds(session, row_id)  # its renewal finds the row taken
        assert not old.finish(session, row_id, {"status": "sent"})
        session.commit()
        assert new.holds(session, row_id)
    row = deliveries(db_session, issue_id)
    assert [(r.status, r.claimed_by) for r in row.values()] == [(DeliveryStatus.PENDING, new.token)]


def test_the_outbox_worker_skips_a_message_it_lost(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    short_leases(app)
    message = queue(db_session, app, clock.now())
    database, mailer = get_database(app), get_mailer(app)
    # The run's clock is the test's, so the stall below is seen by it too.
    stalled = Lease(database, OutboxMessage, OutboxStatus.PENDING, mailer.lease, clock.now)
    claimed = stalled.claim([], limit=10, order_by=outbox._OLDEST_FIRST)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert outbox.deliver_pending(database, mailer, clock.now()).sent == 1
    # The stalled run resumes: the row is no longer its own, nothing is sent or written.
    assert outbox._deliver(database, mailer, stalled, claimed, clock.now()).total == 0
    assert len(smtp_sink.to(message.to_address)) == 1
    db_session.expire_all()
    row = db_session.scalar(select(OutboxMessage).where(OutboxMessage.id == message.id))
    assert row is not None and row.status == OutboxStatus.SENT
