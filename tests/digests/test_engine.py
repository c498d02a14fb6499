"""Building issues and sending them through the real SMTP sink."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy.orm import Session

from tests.digests.factories import (
    approved_issue,
    build,
    deliveries,
    issue_in,
    make_article,
    statuses,
    week_of_articles,
)
from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import make_subscriber
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.digests.building import NO_NEW_ARTICLES
from webapp.digests.models import IssueStatus
from webapp.digests.services import EngineSettings, Worker, approve_issue
from webapp.outbox.gateway import get_mailer


def worker(app: Flask, clock: FrozenClock, **settings: object) -> Worker:
    return Worker(
        get_database(app),
        get_mailer(app),
        secret=app.config["SECRET_KEY"],
        now=clock.now,
        settings=EngineSettings(**settings),  # type: ignore[arg-type]
    )


def test_build_makes_one_issue_per_language_and_skips_when_nothing_is_new(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    now = clock.now()
    articles = week_of_articles(db_session, now, "en")
    db_session.commit()
    built = build(app, db_session, clock)
    en, ru = (issue_in(db_session, i) for i in built)
    assert en.language == "en" and en.status == IssueStatus.DRAFT
    assert [i["article_id"] for i in en.items if i["section"] == "top"] == [
        articles[0].id,
        articles[1].id,
    ]
    assert [i["article_id"] for i in en.items if i["section"] == "new"] == [articles[2].id]
    assert ru.status == IssueStatus.SKIPPED and ru.note == NO_NEW_ARTICLES
    # It went out; a week later nothing new was published: no English issue either.
    approve_issue(db_session, en, now=clock.now())
    db_session.commit()
    clock.advance(days=7)
    again = issue_in(db_session, build(app, db_session, clock)[0])
    assert again.status == IssueStatus.SKIPPED


def test_the_scheduled_build_runs_once_per_slot(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    week_of_articles(db_session, clock.now())
    db_session.commit()
    assert len(build(app, db_session, clock, force=False)) == 2
    assert build(app, db_session, clock, force=False) == []


def test_sending_reaches_every_eligible_reader_once_with_list_headers(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    week_of_articles(db_session, clock.now())
    readers = [make_subscriber(db_session, name=f"Reader {n}") for n in range(5)]
    make_subscriber(db_session, status="pending")
    make_subscriber(db_session, status="unsubscribed")
    make_subscriber(db_session, paused=True)
    make_subscriber(db_session, language="ru")
    both = make_subscriber(db_session, languages=["ru", "en"], language="ru")
    db_session.commit()
    issue = issue_in(db_session, build(app, db_session, clock)[0])
    assert approve_issue(db_session, issue, now=clock.now()) == 6
    db_session.commit()

    counts = worker(app, clock).run()

    assert counts.sent == 6 and counts.finished == [issue.id]
    received = smtp_sink.wait_for(6)
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(
        [r.email for r in readers] + [both.email]
    )
    message = smtp_sink.to(readers[0].email)[0]
    assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/en/unsubscribe/" in message.message["List-Unsubscribe"]
    assert message.message["List-Id"].endswith("<digest-en.test.example>")
    assert message.message["Message-ID"]
    html = message.part("text/html")
    assert "Hello, Reader 0!" in html
    assert "utm_medium=email" in html and "utm_campaign=digest-" in html
    assert f"/en/digest/{issue.id}" in message.part("text/plain")
    assert issue_in(db_session, issue.id).status == IssueStatus.SENT
    # Running again sends nothing more.
    assert worker(app, clock).run().sent == 0
    assert len(smtp_sink.messages) == 6


def test_unsubscribing_during_a_send_is_honoured(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 4)
    issue = issue_in(db_session, issue_id)
    first = worker(app, clock)
    first.limit = 2
    assert first.run().sent == 2
    leaver = readers[3]
    leaver.status = "unsubscribed"  # type: ignore[assignment]
    db_session.commit()
    rest = worker(app, clock).run()
    assert rest.sent == 1 and rest.skipped == 1
    assert smtp_sink.to(leaver.email) == []
    assert statuses(db_session, issue.id) == {"sent": 3, "skipped": 1}


def test_a_550_fails_one_address_and_suppresses_it(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 3)
    issue = issue_in(db_session, issue_id)
    smtp_sink.handler.reply_for[readers[1].email] = "550 5.1.1 no such user"
    counts = worker(app, clock).run()
    assert (counts.sent, counts.failed) == (2, 1)
    rows = deliveries(db_session, issue.id)
    assert "550" in (rows[readers[1].id].last_error or "")
    db_session.expire_all()
    assert db_session.get(type(readers[1]), readers[1].id).suppressed  # type: ignore[union-attr]
    # Not retried: the issue is finished.
    clock.advance(hours=1)
    assert worker(app, clock).run().handled == 0
    assert issue_in(db_session, issue.id).status == IssueStatus.SENT


def test_421_for_a_while_is_retried_with_backoff_then_everyone_gets_it(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 3)
    issue = issue_in(db_session, issue_id)
    smtp_sink.handler.data_reply = "421 4.3.2 service busy, try later"
    counts = worker(app, clock).run()
    assert counts.sent == 0 and counts.retried == 3
    assert issue_in(db_session, issue.id).status == IssueStatus.SENDING
    # Still busy on the next runs: nothing lost, nothing finished.
    for _ in range(3):
        clock.advance(minutes=30)
        assert worker(app, clock).run().sent == 0
    assert statuses(db_session, issue.id) == {"pending": 3}
    smtp_sink.handler.data_reply = None
    clock.advance(hours=1)
    assert worker(app, clock).run().sent == 3
    assert len(smtp_sink.messages) == 3
    assert issue_in(db_session, issue.id).status == IssueStatus.SENT


def test_the_issue_pauses_past_the_error_threshold(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 10)
    issue = issue_in(db_session, issue_id)
    for reader in readers[:5]:
        smtp_sink.handler.reply_for[reader.email] = "550 5.7.1 rejected"
    counts = worker(app, clock, pause_min_finished=4, pause_failure_rate=0.5).run()
    paused = issue_in(db_session, issue.id)
    assert paused.status == IssueStatus.PAUSED
    assert paused.note.startswith("error-threshold")
    assert counts.sent + counts.failed < 10
    assert "pending" in statuses(db_session, issue.id)


def test_donors_get_thanks_and_others_the_ask(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    from tests.donations.factories import make_donation, make_donor

    make_article(db_session, published_at=clock.now() - timedelta(days=1))
    donor_reader = make_subscriber(db_session)
    other = make_subscriber(db_session)
    donor = make_donor(db_session, email=donor_reader.email)
    make_donation(db_session, donor=donor, paid_at=clock.now() - timedelta(days=30))
    db_session.commit()
    issue = issue_in(db_session, build(app, db_session, clock)[0])
    approve_issue(db_session, issue, now=clock.now())
    db_session.commit()
    worker(app, clock).run()
    assert "Thank you for supporting" in smtp_sink.to(donor_reader.email)[0].part("text/plain")
    asked = smtp_sink.to(other.email)[0].part("text/plain")
    assert "Support us" in asked and "Thank you for supporting" not in asked


def test_a_russian_issue_reads_russian_from_subject_to_support_block(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    week_of_articles(db_session, clock.now(), "ru")
    reader = make_subscriber(db_session, language="ru", name="Анна")
    db_session.commit()
    ru_issue = next(
        issue_in(db_session, i)
        for i in build(app, db_session, clock)
        if issue_in(db_session, i).language == "ru"
    )
    assert "неделя" in ru_issue.subject
    approve_issue(db_session, ru_issue, now=clock.now())
    db_session.commit()
    worker(app, clock).run()
    message = smtp_sink.to(reader.email)[0]
    assert message.message["Content-Language"] == "ru"
    text = message.part("text/plain")
    assert "Здравствуйте, Анна!" in text
    assert "САМОЕ ЧИТАЕМОЕ ЗА НЕДЕЛЮ" in text
    assert "существует на деньги читателей" in text
    assert "/ru/unsubscribe/" in message.message["List-Unsubscribe"]


def test_the_rate_limit_paces_each_worker(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    approved_issue(app, db_session, clock, 5)
    # A fake monotonic clock that only moves when the worker sleeps: the sleeps it asks for
    # are exactly the pacing (2 messages per second: half a second apart).
    moment = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        moment[0] += seconds

    paced = worker(app, clock, rate_per_second=2.0)
    paced.sleep, paced.monotonic = sleep, lambda: moment[0]
    assert paced.run().sent == 5
    assert slept == [0.5, 0.5, 0.5, 0.5]


def test_erasing_a_subscriber_removes_their_delivery_rows(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    from webapp.subscribers.erasure import erase_subscriber

    week_of_articles(db_session, clock.now())
    leaver, stayer = make_subscriber(db_session), make_subscriber(db_session)
    db_session.commit()
    issue = issue_in(db_session, build(app, db_session, clock)[0])
    approve_issue(db_session, issue, now=clock.now())
    db_session.commit()
    erase_subscriber(
        db_session, leaver, staff=None, secret=app.config["SECRET_KEY"], now=clock.now(), ip=None
    )
    db_session.commit()
    assert set(deliveries(db_session, issue.id)) == {stayer.id}
    assert worker(app, clock).run().sent == 1
