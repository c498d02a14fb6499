"""Relay reports tied back to the issue that caused them: an issue goes out through
aiosmtpd, then bounces and complaints arrive for some of its messages by their Message-IDs.
The events name the right deliveries and issue, the figures equal the hand count, the next
issue skips the suppressed readers, and the issue pauses itself at the threshold."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.digests.factories import approved_issue, issue_in
from tests.helpers.smtp import SmtpSink
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.digests.models import DigestDelivery, IssueStatus
from webapp.digests.services import (
    Worker,
    delivery_id_of,
    delivery_message_id,
    eligible_subscribers,
    engine_settings,
)
from webapp.email_events.models import EmailEvent
from webapp.email_events.services import IssueReports, issue_reports
from webapp.outbox.services import get_mailer
from webapp.subscribers.models import Subscriber

TOKEN = "issue-events-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **app_config,
        "EMAIL_EVENTS_GENERIC_TOKEN": TOKEN,
        # One complaint in 10 is 10%: over a 5% limit once 10 are sent, not before.
        "DIGEST_PAUSE_COMPLAINT_RATE": 0.05,
        "DIGEST_PAUSE_BOUNCE_RATE": 0.25,
        "DIGEST_PAUSE_MIN_SENT": 10,
    }


def _worker(app: Flask, clock: FrozenClock) -> Worker:
    return Worker(
        get_database(app),
        get_mailer(app),
        secret=app.config["SECRET_KEY"],
        now=clock.now,
        settings=engine_settings(app.config),
    )


def _message_ids(smtp_sink: SmtpSink, count: int) -> dict[str, str]:
    """Recipient -> the Message-ID of the digest they got."""
    return {m.rcpt_tos[0]: m.message["Message-ID"] for m in smtp_sink.wait_for(count)}


def _report(client: FlaskClient, events: list[dict[str, Any]]) -> Any:
    response = client.post(
        "/email-events/generic", data=json.dumps({"events": events}), headers=AUTH
    )
    assert response.status_code == 200, response.text
    return response.json


def test_a_delivery_message_id_names_its_delivery() -> None:
    message_id = delivery_message_id(4711, "news.example.org")
    assert message_id.startswith("<rd.4711.") and message_id.endswith("@news.example.org>")
    assert delivery_id_of(message_id) == 4711
    assert delivery_id_of(message_id.strip("<>")) == 4711  # SES reports it without brackets
    assert delivery_message_id(4711, "x.org") != delivery_message_id(4711, "x.org")
    for other in ["", "<abc@x.org>", "<rd.12@x.org>", "<rd.x.123456789abc@x.org>", "rd.1.zz@x"]:
        assert delivery_id_of(other) is None


def test_reports_are_tied_to_the_issue_and_the_next_issue_skips_the_suppressed(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    clock: FrozenClock,
    smtp_sink: SmtpSink,
) -> None:
    issue_id, readers = approved_issue(app, db_session, clock, 40)
    _worker(app, clock).run()
    sent = _message_ids(smtp_sink, 40)
    deliveries = {
        row.subscriber_id: row.id
        for row in db_session.scalars(
            select(DigestDelivery).where(DigestDelivery.issue_id == issue_id)
        )
    }
    bounced, complained = readers[:3], readers[3:4]
    events = [
        {"type": "bounce", "email": r.email, "message_id": sent[r.email], "id": f"b-{r.id}"}
        for r in bounced
    ] + [
        {"type": "complaint", "email": r.email, "message_id": sent[r.email], "id": f"c-{r.id}"}
        for r in complained
    ]
    assert _report(client, events + events[:2])["recorded"] == 4  # with repeats
    rows = db_session.scalars(select(EmailEvent).order_by(EmailEvent.id)).all()
    assert [(row.issue_id, row.delivery_id) for row in rows] == [
        (issue_id, deliveries[r.id]) for r in bounced + complained
    ]
    # A second report of the same complaint under another id (relays do that) is one reader.
    again = {**events[-1], "id": "c-again"}
    assert _report(client, [again])["recorded"] == 1
    figures = issue_reports(db_session, issue_id)
    assert figures == IssueReports(
        sent=40, delivered=0, hard_bounces=3, soft_bounces=0, complaints=1
    )
    assert figures.rate(figures.hard_bounces) == 3 / 40
    # 3 of 40 bounced (7.5%, under 25%) and 1 of 40 complained (2.5%, under 5%): still sent.
    assert issue_in(db_session, issue_id).status == IssueStatus.SENT
    wanting = set(db_session.scalars(select(Subscriber.id).where(eligible_subscribers("en"))))
    assert wanting == {r.id for r in readers[4:]}


def _hold_back(session: Session, issue_id: int, keep: int, clock: FrozenClock) -> list[int]:
    """Make all but `keep` of the issue's deliveries due only tomorrow: the issue is then
    still being sent after a run (as a large list is); returns the held ids."""
    ids = list(
        session.scalars(
            select(DigestDelivery.id)
            .where(DigestDelivery.issue_id == issue_id)
            .order_by(DigestDelivery.id)
        )
    )[keep:]
    session.execute(
        update(DigestDelivery)
        .where(DigestDelivery.id.in_(ids))
        .values(next_attempt_at=clock.now() + timedelta(days=1))
    )
    session.commit()
    return ids


def test_the_issue_pauses_itself_when_complaints_pass_the_threshold(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    clock: FrozenClock,
    smtp_sink: SmtpSink,
) -> None:
    issue_id, _readers = approved_issue(app, db_session, clock, 30)
    held = _hold_back(db_session, issue_id, 5, clock)
    _worker(app, clock).run()
    first = _message_ids(smtp_sink, 5)
    complainer = next(iter(first))
    _report(
        client,
        [{"type": "complaint", "email": complainer, "message_id": first[complainer], "id": "c1"}],
    )
    # 1 of 5 is 20%, over 5%, but 5 sent is under the 10 a rate needs: it goes on.
    assert issue_in(db_session, issue_id).status == IssueStatus.SENDING
    db_session.execute(
        update(DigestDelivery)
        .where(DigestDelivery.id.in_(held[:5]))
        .values(next_attempt_at=clock.now())
    )
    db_session.commit()
    _worker(app, clock).run()
    smtp_sink.wait_for(10)
    second = {m.rcpt_tos[0]: m.message["Message-ID"] for m in smtp_sink.messages[5:10]}
    other = next(iter(second))
    _report(
        client, [{"type": "complaint", "email": other, "message_id": second[other], "id": "c2"}]
    )
    db_session.expire_all()
    issue = issue_in(db_session, issue_id)
    assert issue.status == IssueStatus.PAUSED
    assert issue.note == "complaint-threshold: 2 of 10 sent (20.00%, limit 5.00%)"
    # Paused: nothing more goes out, even once the rest is due, until staff resume.
    db_session.execute(
        update(DigestDelivery)
        .where(DigestDelivery.id.in_(held))
        .values(next_attempt_at=clock.now())
    )
    db_session.commit()
    assert _worker(app, clock).run().sent == 0
    assert len(smtp_sink.messages) == 10
