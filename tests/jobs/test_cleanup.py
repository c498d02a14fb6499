"""`readership jobs run cleanup`: pending signups past their keeping time leave no trace."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import get_subscriber, make_subscriber, one_email_to, sign_up
from webapp.cli import main
from webapp.core.clock import FrozenClock
from webapp.outbox.models import OutboxMessage
from webapp.subscribers.models import ConsentRecord, SubscriberEvent


def count(session: Session, model: object) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_cleanup_expires_old_pending_signups_only(
    app: Flask,
    runner: FlaskCliRunner,
    db_session: Session,
    smtp_sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    client = app.test_client()
    sign_up(client, "never@example.com", name="Never Confirmed")
    one_email_to(smtp_sink, "never@example.com")
    make_subscriber(db_session, email="kept@example.com", status="confirmed")
    make_subscriber(db_session, email="left@example.com", status="unsubscribed")
    db_session.commit()
    clock.advance(days=3)
    sign_up(client, "recent@example.com")

    # Six days after the first signup nothing is old enough yet.
    clock.advance(days=3)
    result = runner.invoke(main, ["jobs", "run", "cleanup"])
    assert result.exit_code == 0, result.output
    assert "expired 0 pending signups" in result.output

    clock.advance(days=2)
    result = runner.invoke(main, ["jobs", "run", "cleanup"])
    assert result.exit_code == 0, result.output
    assert "expired 1 pending signups" in result.output
    assert get_subscriber(db_session, "never@example.com") is None
    assert get_subscriber(db_session, "recent@example.com").status == "pending"
    assert get_subscriber(db_session, "kept@example.com") is not None
    assert get_subscriber(db_session, "left@example.com") is not None
    # Nothing personal is kept: consent, history and the queued email went too.
    assert count(db_session, ConsentRecord) == 1
    assert count(db_session, OutboxMessage) == 1
    assert (
        db_session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.to_address == "never@example.com")
        )
        == 0
    )
    assert count(db_session, SubscriberEvent) == 2  # recent@: signup, confirmation_sent


def test_asking_again_keeps_a_pending_signup_alive(
    app: Flask, runner: FlaskCliRunner, db_session: Session, clock: FrozenClock
) -> None:
    client = app.test_client()
    sign_up(client, "slow@example.com")
    clock.advance(days=6)
    sign_up(client, "slow@example.com")  # a fresh confirmation email: a fresh week
    clock.advance(days=2)
    assert "expired 0" in runner.invoke(main, ["jobs", "run", "cleanup"]).output
    assert get_subscriber(db_session, "slow@example.com") is not None


def test_cleanup_drops_staff_sessions_ended_a_month_ago(
    app: Flask, db_session: Session, runner: FlaskCliRunner, clock: FrozenClock
) -> None:
    from datetime import timedelta

    from tests.staff.factories import make_staff
    from webapp.staff.models import StaffSession
    from webapp.staff.services import start_session

    user = make_staff(db_session, role="editor")
    db_session.commit()
    start_session(
        db_session,
        user=user,
        ip=None,
        user_agent="test",
        now=clock.now(),
        lifetime=timedelta(hours=1),
    )
    db_session.commit()
    clock.advance(days=10)
    start_session(db_session, user=user, ip=None, user_agent="test", now=clock.now())
    db_session.commit()
    assert count(db_session, StaffSession) == 2

    clock.advance(days=25)  # the first ended 35 days ago, the second 25 days ago
    result = runner.invoke(main, ["jobs", "run", "cleanup"])

    assert result.exit_code == 0, result.output
    assert "removed 1 ended staff session rows" in result.output
    assert count(db_session, StaffSession) == 1
