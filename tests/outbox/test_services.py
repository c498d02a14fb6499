"""Queueing and delivering transactional email through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emails.mailbox import LocalMailbox
from emails.message import HeaderError
from tests.helpers.smtp import SmtpSink, free_port
from tests.outbox.conftest import queue, reload
from webapp.core.clock import FrozenClock, as_utc
from webapp.core.leases import DEFAULT_LEASE
from webapp.db import get_database
from webapp.outbox import services
from webapp.outbox.gateway import build_mailer, get_mailer
from webapp.outbox.models import InvalidTransition, OutboxMessage, OutboxStatus
from webapp.outbox.services import (
    MAX_ATTEMPTS,
    deliver_now,
    deliver_pending,
    erase_outbox_messages,
    retry_delay,
    retry_failed_message,
)
from webapp.outbox.signals import permanent_failure
from webapp.site.services import get_site_settings


@pytest.fixture
def bounces() -> Iterator[list[tuple[str, str]]]:
    """Connects a `permanent_failure` receiver for the test and lists its calls."""
    calls: list[tuple[str, str]] = []

    def hook(_sender: object, *, session: Session, address: str, reason: str) -> None:
        calls.append((address, reason))

    permanent_failure.connect(hook)
    yield calls
    permanent_failure.disconnect(hook)


def count_rows(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_queued_email_arrives_with_both_parts(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    settings = get_site_settings(db_session)
    settings.publication_name = "The Test Review"
    db_session.commit()
    message = queue(
        db_session,
        app,
        clock.now(),
        template="confirm_subscription",
        language="ru",
        context={"confirm_url": "http://localhost/confirm/T0KEN?a=1&b=2"},
        headers={"List-Id": "The Test Review <list.test.example>"},
        subscriber_id=42,
    )
    assert message.status == OutboxStatus.PENDING and message.subscriber_id == 42

    counts = deliver_now(get_database(app), get_mailer(app), [message.id], clock.now())

    assert (counts.sent, counts.retried, counts.failed) == (1, 0, 0)
    (received,) = smtp_sink.wait_for(1)
    assert received.rcpt_tos == ["reader@example.org"]
    assert received.mail_from == "newsletter@test.example"
    assert re.search(rb"(?<!\r)\n", received.raw) is None, "bare LF on the wire"
    assert received.message.get_content_type() == "multipart/alternative"
    assert received.message["From"].addresses[0].display_name == "The Test Review"
    assert received.message["List-Id"] == "The Test Review <list.test.example>"
    assert received.message["Message-ID"].endswith("@test.example>")
    assert received.message["Content-Language"] == "ru"
    assert received.subject == message.subject
    assert "http://localhost/confirm/T0KEN?a=1&b=2" in received.part("text/plain")
    assert 'href="http://localhost/confirm/T0KEN?a=1&amp;b=2"' in received.part("text/html")
    assert 'lang="ru"' in received.part("text/html")
    row = reload(db_session, message.id)
    assert row.status == OutboxStatus.SENT
    assert (row.attempts, row.last_error, row.claimed_by) == (1, None, None)
    assert as_utc(row.sent_at) == clock.now()  # type: ignore[arg-type]
    # Sent is sent: neither the job nor a second deliver_now sends it again.
    assert deliver_now(get_database(app), get_mailer(app), [message.id], clock.now()).total == 0
    assert deliver_pending(get_database(app), get_mailer(app), clock.now()).total == 0
    assert len(smtp_sink.messages) == 1


def test_the_site_settings_reach_the_email(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    settings = get_site_settings(db_session)
    settings.postal_address = "1 Press Street, Berlin"
    settings.logo_data, settings.logo_mime = b"<svg/>", "image/svg+xml"
    settings.primary_color = "#0f766e"
    db_session.commit()
    message = queue(db_session, app, clock.now())
    deliver_now(get_database(app), get_mailer(app), [message.id], clock.now())
    html = smtp_sink.wait_for(1)[0].part("text/html")
    assert "1 Press Street, Berlin" in html
    assert 'src="http://localhost/logo"' in html
    assert "#0f766e" in html


def test_a_line_break_in_the_publication_name_does_not_break_the_sender(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    get_site_settings(db_session).publication_name = "The Test\r\nReview"
    db_session.commit()
    message = queue(db_session, app, clock.now())
    deliver_now(get_database(app), get_mailer(app), [message.id], clock.now())
    (received,) = smtp_sink.wait_for(1)
    assert received.message["From"].addresses[0].display_name == "The Test Review"


def test_smtp_down_then_back_arrives_exactly_once(
    request: pytest.FixtureRequest,
    app_config: dict[str, Any],
    smtp_sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    app_config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nobody listens there
    app: Flask = request.getfixturevalue("app")
    session: Session = request.getfixturevalue("db_session")
    database = get_database(app)

    message = queue(session, app, clock.now())
    counts = deliver_now(database, get_mailer(app), [message.id], clock.now())
    assert (counts.sent, counts.retried) == (0, 1)
    row = reload(session, message.id)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1 and "cannot connect" in (row.last_error or "")
    assert as_utc(row.next_attempt_at) == clock.now() + retry_delay(1)

    # Not due yet: the job leaves it alone.
    assert deliver_pending(database, get_mailer(app), clock.now()).total == 0
    clock.advance(seconds=retry_delay(1).total_seconds())
    assert deliver_pending(database, get_mailer(app), clock.now()).retried == 1
    assert as_utc(reload(session, message.id).next_attempt_at) == clock.now() + retry_delay(2)

    # The server is back (same configuration otherwise).
    recovered = build_mailer(
        {**app.config, "SMTP_URL": smtp_sink.url}, Path(app.root_path) / "translations"
    )
    assert deliver_pending(database, recovered, clock.now()).total == 0  # still backing off
    clock.advance(minutes=2)
    assert deliver_pending(database, recovered, clock.now()).sent == 1
    clock.advance(hours=12)
    assert deliver_pending(database, recovered, clock.now()).total == 0
    row = reload(session, message.id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 3, None)
    assert len(smtp_sink.to("reader@example.org")) == 1


def test_421_then_recovery(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    smtp_sink.handler.data_reply = "421 4.3.2 try later"
    first = queue(db_session, app, clock.now(), to="one@example.org")
    second = queue(db_session, app, clock.now(), to="two@example.org")
    counts = deliver_pending(get_database(app), get_mailer(app), clock.now())
    # The server closed the door: the run stops, both wait for their retry.
    assert (counts.sent, counts.retried, counts.failed) == (0, 2, 0)
    assert reload(db_session, first.id).last_error == "421 4.3.2 try later"
    assert reload(db_session, second.id).status == OutboxStatus.PENDING

    smtp_sink.handler.data_reply = None
    clock.advance(minutes=1)
    counts = deliver_pending(get_database(app), get_mailer(app), clock.now())
    assert counts.sent == 2
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [
        "one@example.org",
        "two@example.org",
    ]


def test_550_fails_once_calls_the_hook_and_is_not_retried(
    app: Flask,
    db_session: Session,
    smtp_sink: SmtpSink,
    clock: FrozenClock,
    bounces: list[tuple[str, str]],
) -> None:
    smtp_sink.handler.reply_for["x@y.example"] = "550 5.1.1 no such user"
    bad = queue(db_session, app, clock.now(), to="x@y.example")
    good = queue(db_session, app, clock.now(), to="fine@example.org")

    counts = deliver_pending(get_database(app), get_mailer(app), clock.now())

    assert (counts.sent, counts.retried, counts.failed) == (1, 0, 1)
    row = reload(db_session, bad.id)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error == "550 5.1.1 no such user"
    assert bounces == [("x@y.example", "550 5.1.1 no such user")]
    assert reload(db_session, good.id).status == OutboxStatus.SENT
    clock.advance(days=3)
    assert deliver_pending(get_database(app), get_mailer(app), clock.now()).total == 0
    assert bounces == [("x@y.example", "550 5.1.1 no such user")]
    assert smtp_sink.to("x@y.example") == []


def test_a_broken_hook_does_not_lose_the_failure(
    app: Flask,
    db_session: Session,
    smtp_sink: SmtpSink,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_sender: object, *, session: Session, address: str, reason: str) -> None:
        get_site_settings(session).postal_address = "written by a hook that then failed"
        session.flush()
        raise RuntimeError("hook bug")

    permanent_failure.connect(broken)
    try:
        smtp_sink.handler.reply_for["x@y.example"] = "550 5.1.1 no such user"
        message = queue(db_session, app, clock.now(), to="x@y.example")
        counts = deliver_now(get_database(app), get_mailer(app), [message.id], clock.now())
    finally:
        permanent_failure.disconnect(broken)
    assert counts.failed == 1
    assert reload(db_session, message.id).status == OutboxStatus.FAILED
    db_session.expire_all()
    assert get_site_settings(db_session).postal_address == ""
    assert "hook bug" in caplog.text


def test_gives_up_after_the_last_try_without_suppressing(
    app: Flask,
    db_session: Session,
    smtp_sink: SmtpSink,
    clock: FrozenClock,
    bounces: list[tuple[str, str]],
) -> None:
    smtp_sink.handler.reply_for["full@example.org"] = "452 4.2.2 mailbox full"
    message = queue(db_session, app, clock.now(), to="full@example.org")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        counts = deliver_pending(get_database(app), get_mailer(app), clock.now())
        assert counts.total == 1, attempt
        clock.advance(seconds=retry_delay(attempt).total_seconds())
    row = reload(db_session, message.id)
    assert row.status == OutboxStatus.FAILED and row.attempts == MAX_ATTEMPTS
    assert (row.last_error or "").startswith(f"gave up after {MAX_ATTEMPTS} tries: 452")
    assert bounces == []
    assert retry_delay(MAX_ATTEMPTS) == timedelta(hours=6)


def test_local_mailbox_when_no_smtp_server(
    request: pytest.FixtureRequest,
    app_config: dict[str, Any],
    tmp_path: Path,
    clock: FrozenClock,
) -> None:
    app_config["SMTP_URL"] = None
    app: Flask = request.getfixturevalue("app")
    session: Session = request.getfixturevalue("db_session")
    assert get_mailer(app).uses_smtp is False

    message = queue(session, app, clock.now(), to="local@example.org")
    assert deliver_now(get_database(app), get_mailer(app), [message.id], clock.now()).sent == 1

    box = LocalMailbox(tmp_path / "mailbox")
    (entry,) = box.list().entries
    assert entry.to == "local@example.org"
    stored = box.get(entry.key)
    assert stored.html and stored.text and stored.subject == message.subject


def test_two_workers_send_each_message_once(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    ids = [queue(db_session, app, clock.now(), to=f"r{i}@example.org").id for i in range(30)]
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            counts = deliver_pending(get_database(app), get_mailer(app), clock.now(), limit=30)
            results.append(counts.sent)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sum(results) == 30
    received = sorted(m.rcpt_tos[0] for m in smtp_sink.wait_for(30))
    assert received == sorted(f"r{i}@example.org" for i in range(30))
    assert all(reload(db_session, i).status == OutboxStatus.SENT for i in ids)


def test_a_crashed_worker_s_lease_runs_out(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    message = queue(db_session, app, clock.now())
    # A worker claims the row, then dies before sending (kill -9).
    lease = services._lease(get_database(app), get_mailer(app), clock.now())
    assert lease.claim([], limit=10, order_by=services._OLDEST_FIRST) == [message.id]
    assert deliver_pending(get_database(app), get_mailer(app), clock.now()).total == 0
    clock.advance(seconds=DEFAULT_LEASE.total_seconds() + 1)
    assert deliver_pending(get_database(app), get_mailer(app), clock.now()).sent == 1
    assert len(smtp_sink.messages) == 1


def test_deliver_now_never_raises(app: Flask, db_session: Session, clock: FrozenClock) -> None:
    message = queue(db_session, app, clock.now())
    mailer = get_mailer(app)

    def broken_factory() -> Any:
        raise RuntimeError("sender cannot be built")

    broken = build_mailer(app.config, Path(app.root_path) / "translations")
    broken.sender_factory = broken_factory
    assert deliver_now(get_database(app), broken, [message.id], clock.now()).total == 0
    assert deliver_now(get_database(app), mailer, [], clock.now()).total == 0
    assert deliver_now(get_database(app), mailer, [999_999], clock.now()).total == 0
    assert reload(db_session, message.id).status == OutboxStatus.PENDING


def test_hostile_address_writes_nothing(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    with pytest.raises(HeaderError):
        queue(db_session, app, clock.now(), to="a@example.org\r\nBcc: everyone@example.org")
    db_session.rollback()
    assert count_rows(db_session) == 0


def test_retry_a_failed_message(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    smtp_sink.handler.reply_for["x@y.example"] = "550 5.1.1 no such user"
    message = queue(db_session, app, clock.now(), to="x@y.example")
    deliver_pending(get_database(app), get_mailer(app), clock.now())
    smtp_sink.handler.reply_for.clear()
    db_session.expire_all()
    retry_failed_message(db_session, message.id, clock.now())
    db_session.commit()
    assert deliver_pending(get_database(app), get_mailer(app), clock.now()).sent == 1
    db_session.expire_all()
    with pytest.raises(InvalidTransition):
        retry_failed_message(db_session, message.id, clock.now())
    with pytest.raises(LookupError):
        retry_failed_message(db_session, 999_999, clock.now())


def test_erase_by_subscriber_or_address(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    queue(db_session, app, clock.now(), to="Ann@example.org")
    queue(db_session, app, clock.now(), to="other@example.org", subscriber_id=7)
    queue(db_session, app, clock.now(), to="keep@example.org", subscriber_id=8)
    assert erase_outbox_messages(db_session, address="ann@EXAMPLE.org ") == 1
    assert erase_outbox_messages(db_session, subscriber_id=7) == 1
    assert erase_outbox_messages(db_session) == 0
    db_session.commit()
    assert count_rows(db_session) == 1
