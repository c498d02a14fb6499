"""Bounces and complaints suppress an address before the next send."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import event_kinds, get_subscriber, make_subscriber, sign_up
from webapp.core.clock import FrozenClock
from webapp.subscribers import services


def test_a_5xx_from_the_real_smtp_server_marks_the_subscriber_bounced(
    app: Flask, client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    smtp_sink.handler.reply_for["nobody@example.com"] = "550 5.1.1 <nobody@example.com> unknown"
    assert sign_up(client, "nobody@example.com").status_code == 303
    subscriber = get_subscriber(db_session, "nobody@example.com")
    assert subscriber.status == "bounced"
    assert subscriber.suppressed and subscriber.suppression_reason == "hard_bounce"
    kinds = event_kinds(db_session, subscriber.id)
    assert kinds[-2:] == ["bounced", "suppressed"]
    # The SMTP reply quoted the address; the history does not keep it.
    assert all("nobody@example.com" not in e.detail for e in subscriber.events)


def test_repeated_soft_bounces_suppress(db_session: Session, clock: FrozenClock) -> None:
    subscriber = make_subscriber(db_session, email="full@example.com")
    db_session.commit()
    for _ in range(services.SOFT_BOUNCE_LIMIT - 1):
        services.record_soft_bounce(
            db_session, "FULL@example.com", "452 mailbox full", now=clock.now()
        )
    assert subscriber.status == "confirmed" and not subscriber.suppressed
    services.record_soft_bounce(db_session, "full@example.com", "452 mailbox full", now=clock.now())
    db_session.commit()
    assert subscriber.status == "bounced"
    assert subscriber.suppression_reason == "soft_bounces"
    assert (
        services.record_soft_bounce(db_session, "unknown@example.com", "x", now=clock.now()) is None
    )


def test_complaint_unsubscribes_and_suppresses(db_session: Session, clock: FrozenClock) -> None:
    subscriber = make_subscriber(db_session, email="angry@example.com")
    db_session.commit()
    services.record_complaint(db_session, "angry@example.com", now=clock.now())
    db_session.commit()
    assert subscriber.status == "unsubscribed" and subscriber.suppressed
    assert subscriber.suppression_reason == "complaint"
    assert not subscriber.receives_digest


def test_confirming_again_lifts_a_bounce(
    app: Flask, client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    from tests.helpers.html import csrf_token, first_url_containing
    from tests.subscribers.factories import one_email_to, path_of

    make_subscriber(db_session, email="fixed@example.com", status="bounced")
    db_session.commit()
    sign_up(client, "fixed@example.com")
    link = first_url_containing(
        one_email_to(smtp_sink, "fixed@example.com").part("text/plain"), "/subscribe/confirm/"
    )
    page = client.get(path_of(link))
    client.post(path_of(link), data={"csrf_token": csrf_token(page.text)})
    subscriber = get_subscriber(db_session, "fixed@example.com")
    assert subscriber.status == "confirmed" and not subscriber.suppressed
    assert subscriber.receives_digest
